"""The engines of one process: the application role's pool, and the workspaces' own login pools."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from app.db.base import schema_for
from app.db.direct import DirectConnection, direct_connection
from app.db.local import local_connect_args
from app.db.pinging import ping_when_idle
from app.db.roles import RoleSecrets
from app.db.tenant_engines import TenantEngines
from app.security.crypto import Keyring

_ROLE_SECRETS = "marid.role_secrets"
_PUBLIC = "marid.public"


class UnknownWorkspace(LookupError):
    """No workspace with this id (never created, or deleted), or it has no login role yet."""


class Database:
    """Create once per process (app or worker) and dispose on shutdown.

    ``keyring`` opens the workspace roles' passwords; without it, public sessions work and tenant sessions
    and provisioning refuse (say, a one-off script that only reads platform tables).
    """

    def __init__(
        self,
        url: str,
        *,
        pool_size: int = 10,
        overflow: int | None = None,
        keyring: Keyring | None = None,
        tenant_workspaces: int = 32,
        tenant_connections: int = 4,
        tenant_url: str | None = None,
        echo: bool = False,
    ) -> None:
        self.url = url
        self.engine: AsyncEngine = create_async_engine(
            url,
            pool_size=pool_size,
            # SQLAlchemy closes an overflow connection when it is checked in, so a steady load above
            # ``pool_size`` opened a new connection (fork, SCRAM, an SSL attempt) on most requests. The web app
            # and the worker keep every connection they may use (``overflow=0``, see ``Settings.database``);
            # short scripts keep the old headroom of as many again.
            max_overflow=pool_size if overflow is None else overflow,
            # Recycle connections so one backend does not collect the relcache of thousands of schemas.
            pool_recycle=900,
            echo=echo,
            connect_args=local_connect_args(make_url(url)),
        )
        ping_when_idle(self.engine)
        self.role_secrets = RoleSecrets(keyring) if keyring is not None else None
        self.tenants = TenantEngines(
            make_url(tenant_url or url),
            self._role_password,
            max_workspaces=tenant_workspaces,
            connections=tenant_connections,
            echo=echo,
        )

    async def dispose(self) -> None:
        await self.tenants.dispose()
        await self.engine.dispose()

    async def _role_password(self, workspace_id: str) -> str:
        secrets = self._secrets()
        async with self.engine.connect() as connection:
            sealed = await connection.scalar(
                text("SELECT db_password_enc FROM public.workspaces WHERE id = :id"), {"id": workspace_id}
            )
        if sealed is None:
            raise UnknownWorkspace(f"no workspace {workspace_id!r} with a login role")
        return secrets.open(workspace_id, sealed)

    def _secrets(self) -> RoleSecrets:
        if self.role_secrets is None:
            raise RuntimeError("this Database was made without a keyring: it cannot reach workspace schemas")
        return self.role_secrets

    @asynccontextmanager
    async def public_session(self) -> AsyncIterator[AsyncSession]:
        """A unit of work on platform tables; commits when the block ends without an exception."""
        async with AsyncSession(self.engine, expire_on_commit=False) as session, session.begin():
            session.info[_PUBLIC] = True
            if self.role_secrets is not None:
                session.info[_ROLE_SECRETS] = self.role_secrets
            yield session

    @asynccontextmanager
    async def direct(self, workspace_id: str | None = None) -> AsyncIterator[DirectConnection]:
        """A pooled connection for the per-request hot path's prebuilt statements (``app.db.direct``): the
        platform's tables, or with ``workspace_id`` that workspace's, logged in as its role. **Each statement
        commits by itself** (autocommit): for a request that reads with one statement and at most writes with
        one more; nothing in it is atomic across statements. Changes go through ``public_session`` or
        ``tenant_session`` (or the unit-of-work helpers)."""
        if workspace_id is None:
            async with direct_connection(self.engine) as connection:
                yield connection
            return
        engine = await self.tenants.bound(workspace_id)
        async with direct_connection(engine.pool, schema_for(workspace_id)) as connection:
            yield connection

    @asynccontextmanager
    async def tenant_session(self, workspace_id: str) -> AsyncIterator[AsyncSession]:
        """A unit of work inside one workspace, on a connection logged in as that workspace's role."""
        engine = await self.tenants.bound(workspace_id)
        async with AsyncSession(engine.sessions, expire_on_commit=False) as session, session.begin():
            yield session


def is_public_session(session: AsyncSession) -> bool:
    """Whether ``session`` runs as the application role (it can see platform tables; a tenant session cannot)."""
    return bool(session.info.get(_PUBLIC))


def role_secrets_of(session: AsyncSession) -> RoleSecrets:
    """The role secrets of the Database that opened ``session`` (provisioning seals new passwords with them)."""
    secrets = session.info.get(_ROLE_SECRETS)
    if not isinstance(secrets, RoleSecrets):
        raise RuntimeError("this session's Database has no keyring: it cannot create workspace roles")
    return secrets
