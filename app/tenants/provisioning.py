"""Create and drop workspace schemas and roles.

A workspace is a Postgres role ``ws_<id>`` (NOLOGIN, member of nothing) owning schema ``ws_<id>`` and every
table in it. The application's login role is made a member, so it can ``SET LOCAL ROLE`` into it; the
workspace role has no rights anywhere else. Everything happens in the caller's transaction, so a failed
provisioning leaves no role, no schema and no row behind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import quote_ident, schema_for
from app.tenants.scripts import TenantScripts, default_scripts


async def run_script(connection: AsyncConnection, sql: str) -> None:
    """Run several statements at once over the simple-query protocol (one round trip, no parameters)."""
    raw: Any = await connection.get_raw_connection()
    if not raw.driver_connection.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement. Going straight to the
        # driver before that would run this script outside the caller's transaction (autocommitted).
        await connection.exec_driver_sql("SELECT 1")
    await raw.driver_connection.execute(sql)


async def create_workspace_schema(
    connection: AsyncConnection, workspace_id: str, scripts: TenantScripts = default_scripts
) -> str:
    """Create role, schema and tables at the current tenant head; returns the head revision."""
    name = quote_ident(schema_for(workspace_id))
    await run_script(
        connection,
        f"CREATE ROLE {name} NOLOGIN NOINHERIT;"
        f"GRANT {name} TO CURRENT_USER;"
        f"CREATE SCHEMA {name} AUTHORIZATION {name};"
        # Objects created from here on are owned by the workspace role.
        f"SET LOCAL ROLE {name};" + scripts.upgrade_sql_for(schema_for(workspace_id), None) + "RESET ROLE;",
    )
    await connection.execute(
        text("UPDATE public.workspaces SET schema_revision = :rev WHERE id = :id"),
        {"rev": scripts.head, "id": workspace_id},
    )
    return scripts.head


async def drop_workspace_schema(connection: AsyncConnection, workspace_id: str) -> None:
    """Drop a workspace's schema (with everything in it) and its role."""
    name = quote_ident(schema_for(workspace_id))
    await run_script(connection, f"DROP SCHEMA IF EXISTS {name} CASCADE; DROP ROLE IF EXISTS {name};")
