"""Migrations: the platform schema, then every workspace schema, with bounded parallelism (``marid migrate``).

Public revisions run through Alembic; tenant revisions run as pre-rendered SQL (:mod:`app.tenants.scripts`).
Each workspace is upgraded in its own transaction that also records its revision (in the schema's
``alembic_version`` and in ``public.workspaces.schema_revision``), so the run is resumable: a second run
picks up whatever is not at head (or still has the old kind of role: see
:func:`convert_legacy_role_sql`). On the first failure no further workspace is started, the ones already
running finish, and the report names the failing schema; every schema is either fully at its old revision
or fully at head. One migrator runs at a time across all processes (an advisory lock).
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine
from tqdm import tqdm

from app.config import get_settings
from app.db import Database, quote_ident, schema_for
from app.db.roles import RoleSecrets, new_role_password, scram_verifier
from app.security.crypto import Keyring
from app.tenants.grants import default_privileges_sql, existing_objects_sql, restrictions_sql
from app.tenants.provisioning import run_script
from app.tenants.scripts import TenantScripts, default_scripts
from migrations import PUBLIC_DIR

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


# Any constant works; it only has to be the same in every process that migrates.
_MIGRATION_LOCK = 0x6D61726964


def _upgrade_public_sync(connection: Connection) -> None:
    config = Config()
    config.set_main_option("script_location", str(PUBLIC_DIR))
    config.attributes["connection"] = connection
    command.upgrade(config, "head")


async def upgrade_public(engine: AsyncEngine) -> None:
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade_public_sync)


async def migrate_everything(
    engine: AsyncEngine,
    *,
    concurrency: int = 4,
    scripts: TenantScripts = default_scripts,
    progress: ProgressCallback | None = None,
    role_secrets: RoleSecrets | None = None,
) -> MigrationReport:
    """Public first, then the workspaces; one migrator at a time across all processes."""
    async with engine.connect() as lock_connection:
        await lock_connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _MIGRATION_LOCK})
        await lock_connection.commit()
        try:
            await upgrade_public(engine)
            return await upgrade_all_workspaces(
                engine, concurrency=concurrency, scripts=scripts, progress=progress, role_secrets=role_secrets
            )
        finally:
            await lock_connection.execute(text("SELECT pg_advisory_unlock(:key)"), {"key": _MIGRATION_LOCK})
            await lock_connection.commit()


async def run_migrate(
    database_url: str,
    *,
    keyring: Keyring | None = None,
    concurrency: int | None = None,
    quiet: bool = False,
    scripts: TenantScripts = default_scripts,
) -> int:
    # The keyring (the command's one) seals the new login passwords of first-design workspaces; without it
    # such workspaces are reported as failing.
    db = Database(
        database_url,
        pool_size=max(2, (concurrency or get_settings().migrate_concurrency) + 1),
        keyring=keyring,
    )
    bars: list[tqdm[Any]] = []

    def progress(done: int, total: int) -> None:
        if quiet:
            return
        if not bars:
            bars.append(tqdm(total=total, unit="workspace", desc="Migrating workspaces", file=sys.stderr))
        bars[0].update(done - bars[0].n)

    try:
        report = await migrate_everything(
            db.engine,
            concurrency=concurrency or get_settings().migrate_concurrency,
            scripts=scripts,
            progress=progress,
            role_secrets=db.role_secrets,
        )
    finally:
        for bar in bars:
            bar.close()
        await db.dispose()
    if report.failure is not None:
        print(
            f"marid migrate: schema {report.failure.schema} failed: {report.failure.message}\n"
            f"{len(report.upgraded)} workspace(s) were upgraded before it; every schema is consistent. "
            "Fix the cause and run `marid migrate` again to resume.",
            file=sys.stderr,
        )
        return 1
    if not quiet:
        print(
            f"Platform schema at head; {len(report.upgraded)} of {report.pending} pending workspace(s) upgraded "
            f"to {report.head}.",
            file=sys.stderr,
        )
    return 0
