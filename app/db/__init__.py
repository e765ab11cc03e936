"""Engines and sessions: the public session for platform tables, the tenant session for workspace tables.

A workspace's tables live in schema ``ws_<id>``. The tenant session is the only way code reaches them: it
binds the schema with ``schema_translate_map`` (never ``SET search_path``, which asyncpg's statement cache does
not survive) on a connection that logged in as the workspace's own role ``ws_<id>``, which may use that schema
only. The application role owns every schema and is a member of no workspace role, so neither a query bug
nor arbitrary SQL in a tenant session can reach another workspace: Postgres answers ``permission denied``.

Services never commit; whoever opened the session (a request or a job) does, by leaving the ``async with``
block without an exception.
"""

from app.db.base import NAMING_CONVENTION, TENANT_SCHEMA, PublicBase, TenantBase, quote_ident, schema_for
from app.db.database import Database, UnknownWorkspace, is_public_session, role_secrets_of

__all__ = [
    "NAMING_CONVENTION",
    "TENANT_SCHEMA",
    "Database",
    "PublicBase",
    "TenantBase",
    "UnknownWorkspace",
    "is_public_session",
    "quote_ident",
    "role_secrets_of",
    "schema_for",
]
