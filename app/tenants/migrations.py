"""Upgrade every workspace schema to the tenant head, with bounded parallelism.

Each workspace is upgraded in its own transaction that also records its revision (in the schema's
``alembic_version`` and in ``public.workspaces.schema_revision``), so the run is resumable: a second run
picks up whatever is not at head (or still has the old kind of role: see
:func:`convert_legacy_role_sql`). On the first failure no further workspace is started, the ones already
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
from app.db.roles import RoleSecrets, new_role_password, scram_verifier
from app.tenants.grants import default_privileges_sql, existing_objects_sql, restrictions_sql
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
            text(
                "SELECT id FROM public.workspaces WHERE schema_revision IS DISTINCT FROM :head "
                "OR db_password_enc IS NULL ORDER BY id"
            ),
            {"head": head},
        )
        return [row[0] for row in rows]


def convert_legacy_role_sql(workspace_id: str, password: str) -> str:
    """Turn a workspace of the first design into the current one.

    Then, the role was NOLOGIN, owned its schema, and the application role was a member of it (to
    ``SET ROLE``). Now the application role owns the schema, is no member, and the role logs in itself.
    ``REASSIGN OWNED`` needs the membership, so it is dropped last.
    """
    name = quote_ident(schema_for(workspace_id))
    return (
        f"REASSIGN OWNED BY {name} TO CURRENT_USER;"
        f"ALTER ROLE {name} LOGIN NOINHERIT PASSWORD '{scram_verifier(password)}';"
        f"REVOKE {name} FROM CURRENT_USER;" + default_privileges_sql(workspace_id) + existing_objects_sql(workspace_id)
    )


async def upgrade_workspace(
    engine: AsyncEngine, workspace_id: str, scripts: TenantScripts, role_secrets: RoleSecrets | None = None
) -> bool:
    """Bring one workspace to head in one transaction; False when it already was (or is gone)."""
    schema = schema_for(workspace_id)
    async with engine.begin() as connection:
        # The row lock keeps two migrators (or a migrator and a deletion) off the same schema.
        locked = (
            await connection.execute(
                text("SELECT db_password_enc IS NULL FROM public.workspaces WHERE id = :id FOR UPDATE"),
                {"id": workspace_id},
            )
        ).first()
        if locked is None:
            return False
        script = ""
        legacy = bool(locked[0])
        if legacy:
            if role_secrets is None:
                raise RuntimeError("the workspace still has the old kind of role; migrating it needs the keyring")
            password = new_role_password()
            script += convert_legacy_role_sql(workspace_id, password)
            await connection.execute(
                text("UPDATE public.workspaces SET db_password_enc = :sealed WHERE id = :id"),
                {"sealed": role_secrets.seal(workspace_id, password), "id": workspace_id},
            )
        # The schema's own version table is the truth; the column in public is a copy for fast listing.
        current = await connection.scalar(
            text(f"SELECT version_num FROM {quote_ident(schema)}.alembic_version")  # noqa: S608
        )
        changed = legacy
        if current != scripts.head:
            if current is not None and not scripts.known(current):
                raise RuntimeError(f"schema is at unknown revision {current!r}")
            script += scripts.upgrade_sql_for(schema, current)
            changed = True
        if changed:
            # DDL runs as the application role (the owner): new tables get the workspace role's default
            # privileges; history and bookkeeping lose their write rights again.
            await run_script(connection, script + restrictions_sql(workspace_id))
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
    role_secrets: RoleSecrets | None = None,
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
                if await upgrade_workspace(engine, workspace_id, scripts, role_secrets):
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
