"""``marid migrate``: upgrade the platform schema, then every workspace schema."""

from __future__ import annotations

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from app.db.roles import RoleSecrets
from app.tenants.migrations import MigrationReport, ProgressCallback, upgrade_all_workspaces
from app.tenants.scripts import TenantScripts, default_scripts
from migrations import PUBLIC_DIR

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
