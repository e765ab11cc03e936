"""Create and drop workspace schemas and roles.

A workspace is a Postgres login role ``ws_<id>`` (member of nothing, and nothing is a member of it) and a
schema ``ws_<id>`` that the application role owns. The workspace role gets only the privileges of
:mod:`app.tenants.grants` in that schema and none anywhere else; tenant sessions log in as it (see
:mod:`app.db`). Everything happens in the caller's transaction, so a failed provisioning leaves no role,
no schema and no row behind.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from app.db import quote_ident, schema_for
from app.db.roles import RoleSecrets, new_role_password, scram_verifier
from app.tenants.grants import default_privileges_sql, restrictions_sql
from app.tenants.scripts import TenantScripts, default_scripts


async def run_script(connection: AsyncConnection, sql: str) -> None:
    """Run several statements at once over the simple-query protocol (one round trip, no parameters)."""
    raw: Any = await connection.get_raw_connection()
    if not raw.driver_connection.is_in_transaction():
        # SQLAlchemy's asyncpg adapter sends BEGIN lazily, with its first statement. Going straight to the
        # driver before that would run this script outside the caller's transaction (autocommitted).
        await connection.exec_driver_sql("SELECT 1")
    await raw.driver_connection.execute(sql)


def role_sql(workspace_id: str, password: str) -> str:
    """The login role of a workspace. Postgres gets the SCRAM verifier, never the password itself."""
    name = quote_ident(schema_for(workspace_id))
    # NOINHERIT and no memberships: the role's rights are exactly its grants. The verifier is base64 and
    # '$:' only, made here: nothing in it needs quoting.
    return f"CREATE ROLE {name} LOGIN NOINHERIT PASSWORD '{scram_verifier(password)}';"


def schema_sql(workspace_id: str, scripts: TenantScripts) -> str:
    schema = schema_for(workspace_id)
    return (
        f"CREATE SCHEMA {quote_ident(schema)};"
        + default_privileges_sql(workspace_id)
        + scripts.upgrade_sql_for(schema, None)
        + restrictions_sql(workspace_id)
    )


async def create_workspace_schema(
    connection: AsyncConnection,
    workspace_id: str,
    role_secrets: RoleSecrets,
    scripts: TenantScripts = default_scripts,
) -> str:
    """Create role, schema and tables at the current tenant head; returns the head revision."""
    password = new_role_password()
    await run_script(connection, role_sql(workspace_id, password) + schema_sql(workspace_id, scripts))
    await connection.execute(
        text("UPDATE public.workspaces SET schema_revision = :rev, db_password_enc = :sealed WHERE id = :id"),
        {"rev": scripts.head, "sealed": role_secrets.seal(workspace_id, password), "id": workspace_id},
    )
    return scripts.head


async def drop_workspace_schema(connection: AsyncConnection, workspace_id: str) -> None:
    """Drop a workspace's schema (with everything in it) and its role."""
    name = quote_ident(schema_for(workspace_id))
    await run_script(connection, f"DROP SCHEMA IF EXISTS {name} CASCADE; DROP ROLE IF EXISTS {name};")
