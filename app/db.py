"""Engines and sessions: the public session for platform tables, the tenant session for workspace tables.

A workspace's tables live in schema ``ws_<id>`` and are owned by the role of the same name, which has rights
on that schema only. The tenant session is the only way code reaches them: it binds the schema with
``schema_translate_map`` (never ``SET search_path``, which asyncpg's statement cache does not survive) and
runs every transaction as the workspace role (``SET LOCAL ROLE``), so a query bug cannot reach another
workspace: Postgres answers ``permission denied``.

Services never commit; whoever opened the session (a request or a job) does, by leaving the ``async with``
block without an exception.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import MetaData, event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase

# Tenant tables are declared in this placeholder schema; sessions and migrations swap in the real one.
TENANT_SCHEMA = "marid_tenant"
_WORKSPACE_ID = re.compile(r"^[a-z0-9]{12}$")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class PublicBase(DeclarativeBase):
    """Platform tables (users, workspaces, memberships, sessions...) in schema ``public``."""

    metadata = MetaData(schema="public", naming_convention=NAMING_CONVENTION)


class TenantBase(DeclarativeBase):
    """Workspace tables; only reachable through :meth:`Database.tenant_session`."""

    metadata = MetaData(schema=TENANT_SCHEMA, naming_convention=NAMING_CONVENTION)


def schema_for(workspace_id: str) -> str:
    """The schema (and role) name of a workspace; refuses anything but a well-formed workspace id."""
    if not _WORKSPACE_ID.fullmatch(workspace_id):
        raise ValueError(f"not a workspace id: {workspace_id!r}")
    return f"ws_{workspace_id}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class Database:
    """The engines of one process. Create once (per app or worker) and dispose on shutdown."""

    def __init__(self, url: str, *, pool_size: int = 10, echo: bool = False) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            max_overflow=pool_size,
            pool_pre_ping=True,
            # Recycle connections so one backend does not collect the relcache of thousands of schemas.
            pool_recycle=900,
            echo=echo,
        )

    async def dispose(self) -> None:
        await self.engine.dispose()

    @asynccontextmanager
    async def public_session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work on platform tables; commits when the block ends without an exception."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session, session.begin():
            yield session

    @asynccontextmanager
    async def tenant_session(self, workspace_id: str) -> AsyncIterator[AsyncSession]:
        """A unit of work inside one workspace, running as that workspace's Postgres role."""
        schema = schema_for(workspace_id)
        bound = self.engine.execution_options(schema_translate_map={TENANT_SCHEMA: schema})
        session = AsyncSession(bound, expire_on_commit=False)
        set_role = f"SET LOCAL ROLE {quote_ident(schema)}"

        # Every transaction of this session, including any begun after a commit, runs as the workspace role.
        @event.listens_for(session.sync_session, "after_begin")
        def _become_workspace_role(_session: Any, _transaction: Any, connection: Any) -> None:
            connection.exec_driver_sql(set_role)

        async with session, session.begin():
            yield session
