"""Upgrade every workspace schema to the tenant head, with bounded parallelism.

Each workspace is upgraded in its own transaction that also records its revision (in the schema's
``alembic_version`` and in ``public.workspaces.schema_revision``), so the run is resumable: a second run
picks up whatever is not at head. On the first failure no further workspace is started, the ones already
running finish, and the report names the failing schema; every schema is either fully at its old revision
or fully at head.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db import quote_ident, schema_for
from app.tenants.provisioning import run_script
from app.tenants.scripts import TenantScripts, default_scripts

ProgressCallback = Callable[[int, int], None]


@dataclass
class WorkspaceMigrationError:
    schema: str
    message: str


@dataclass
class MigrationReport:
    head: str
    pending: int = 0
    upgraded: list[str] = field(default_factory=list)
    failure: WorkspaceMigrationError | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None


async def pending_workspaces(engine: AsyncEngine, head: str) -> list[str]:
    async with engine.connect() as connection:
        rows = await connection.execute(
            text("SELECT id FROM public.workspaces WHERE schema_revision IS DISTINCT FROM :head ORDER BY id"),
            {"head": head},
        )
        return [row[0] for row in rows]


async def upgrade_workspace(engine: AsyncEngine, workspace_id: str, scripts: TenantScripts) -> bool:
    """Bring one workspace to head in one transaction; False when it already was (or is gone)."""
    schema = schema_for(workspace_id)
    async with engine.begin() as connection:
        # The row lock keeps two migrators (or a migrator and a deletion) off the same schema.
        locked = await connection.execute(
            text("SELECT 1 FROM public.workspaces WHERE id = :id FOR UPDATE"), {"id": workspace_id}
        )
        if locked.first() is None:
            return False
        # The schema's own version table is the truth; the column in public is a copy for fast listing.
        current = await connection.scalar(
            text(f"SELECT version_num FROM {quote_ident(schema)}.alembic_version")  # noqa: S608
        )
        if current == scripts.head:
            changed = False
        else:
            if current is not None and not scripts.known(current):
                raise RuntimeError(f"schema is at unknown revision {current!r}")
            await run_script(
                connection,
                f"SET LOCAL ROLE {quote_ident(schema)};" + scripts.upgrade_sql_for(schema, current) + "RESET ROLE;",
            )
            changed = True
        await connection.execute(
            text("UPDATE public.workspaces SET schema_revision = :head WHERE id = :id"),
            {"head": scripts.head, "id": workspace_id},
        )
        return changed


async def upgrade_all_workspaces(
    engine: AsyncEngine,
    *,
    concurrency: int = 4,
    scripts: TenantScripts = default_scripts,
    progress: ProgressCallback | None = None,
) -> MigrationReport:
    report = MigrationReport(head=scripts.head)
    workspace_ids = await pending_workspaces(engine, scripts.head)
    report.pending = len(workspace_ids)
    if not workspace_ids:
        return report
    queue: asyncio.Queue[str] = asyncio.Queue()
    for workspace_id in workspace_ids:
        queue.put_nowait(workspace_id)
    done = 0

    async def worker() -> None:
        nonlocal done
        while report.failure is None:
            try:
                workspace_id = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            try:
                if await upgrade_workspace(engine, workspace_id, scripts):
                    report.upgraded.append(workspace_id)
            except Exception as error:  # any failure stops the run and is reported, not raised
                if report.failure is None:
                    report.failure = WorkspaceMigrationError(schema_for(workspace_id), _first_line(error))
                return
            done += 1
            if progress is not None:
                progress(done, len(workspace_ids))

    await asyncio.gather(*(worker() for _ in range(max(1, concurrency))))
    return report


def _first_line(error: BaseException) -> str:
    message = str(getattr(error, "orig", None) or error).strip()
    return message.splitlines()[0] if message else type(error).__name__
