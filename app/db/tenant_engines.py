"""Connections that log in as a workspace's own role: one small pool per recently used workspace.

The application role is a member of no workspace role (PostgreSQL rebuilds a role's membership list after
every role change, which costs seconds per connection at 10,000 workspaces, and membership would let SQL
switch workspaces with ``SET ROLE``). So a tenant connection cannot be borrowed from the application's pool:
it must log in as ``ws_<id>`` itself. This keeps an engine (a pool of at most ``connections`` connections,
kept open once made) for each of the ``max_workspaces`` most recently used workspaces and drops the least
recently used one beyond that; a cold workspace pays one connection set-up (a few milliseconds on a local
network). So a process holds at most ``max_workspaces`` x ``connections`` tenant connections.

No overflow by default: SQLAlchemy closes an overflow connection when it is checked in, so a workspace busier
than its pool logged in again (a fork, SCRAM, an SSL attempt) on most requests; measured as the largest single
cost of a dashboard request under 16 concurrent clients. A request beyond the pool waits for a connection
(milliseconds) instead.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db.base import TENANT_SCHEMA, schema_for
from app.db.local import local_connect_args
from app.db.pinging import ping_when_idle

PasswordLookup = Callable[[str], Awaitable[str]]


@dataclass(frozen=True)
class TenantEngine:
    """A workspace's pool, and the same pool bound to its schema once for units of work (``sessions``).
    Binding (``execution_options``) builds a new option engine and registers event listeners, which measured 4%
    of a dashboard request when it was done per request."""

    pool: AsyncEngine
    sessions: AsyncEngine


class TenantEngines:
    """An LRU of per-workspace engines; ``engine(workspace_id)`` returns a ready one."""

    def __init__(
        self,
        url: URL,
        password_of: PasswordLookup,
        *,
        max_workspaces: int = 32,
        connections: int = 4,
        overflow: int = 0,
        echo: bool = False,
    ) -> None:
        if max_workspaces < 1 or connections < 1 or overflow < 0:
            raise ValueError("need at least one workspace and one connection per workspace")
        self.url = url
        self.password_of = password_of
        self.max_workspaces = max_workspaces
        self.connections = connections
        self.overflow = overflow
        self.echo = echo
        self._engines: OrderedDict[str, TenantEngine] = OrderedDict()
        # Passwords outlive engines (a workspace evicted and used again needs no lookup); small and bounded.
        self._passwords: OrderedDict[str, str] = OrderedDict()
        self._password_cache_size = max(10_000, 10 * max_workspaces)
        self._disposing: set[asyncio.Task[None]] = set()
        self.created = 0  # engines made so far (tests and benchmarks read it)

    def __len__(self) -> int:
        return len(self._engines)

    def __contains__(self, workspace_id: object) -> bool:
        """Whether the workspace has a pool now (its next session needs no log-in)."""
        return workspace_id in self._engines

    async def engine(self, workspace_id: str) -> AsyncEngine:
        """The workspace's pool (its connections log in as its role; statements name the tenant schema
        placeholder unless bound: see :meth:`bound`)."""
        return (await self.bound(workspace_id)).pool

    async def bound(self, workspace_id: str) -> TenantEngine:
        engine = self._engines.get(workspace_id)
        if engine is not None:
            self._engines.move_to_end(workspace_id)
            return engine
        password = await self._password(workspace_id)
        engine = self._engines.get(workspace_id)  # another task may have made it while we looked up
        if engine is None:
            engine = self._make(workspace_id, password)
            self._engines[workspace_id] = engine
            self._evict()
        return engine

    async def _password(self, workspace_id: str) -> str:
        password = self._passwords.get(workspace_id)
        if password is None:
            password = await self.password_of(workspace_id)
            self._passwords[workspace_id] = password
            while len(self._passwords) > self._password_cache_size:
                self._passwords.popitem(last=False)
        else:
            self._passwords.move_to_end(workspace_id)
        return password

    def _make(self, workspace_id: str, password: str) -> TenantEngine:
        self.created += 1
        pool = create_async_engine(
            self.url.set(username=schema_for(workspace_id), password=password),
            pool_size=self.connections,
            max_overflow=self.overflow,
            pool_recycle=900,
            echo=self.echo,
            connect_args={**local_connect_args(self.url), "server_settings": {"application_name": "marid-tenant"}},
        )
        ping_when_idle(pool)
        schemas = {TENANT_SCHEMA: schema_for(workspace_id)}
        return TenantEngine(pool, sessions=pool.execution_options(schema_translate_map=schemas))

    def _evict(self) -> None:
        """Drop least recently used engines beyond the limit; never one with a connection in use."""
        idle = [
            workspace_id
            for workspace_id, engine in self._engines.items()
            if engine.pool.sync_engine.pool.checkedout() == 0  # type: ignore[attr-defined]
        ]
        for workspace_id in idle[: max(0, len(self._engines) - self.max_workspaces)]:
            self._dispose_later(self._engines.pop(workspace_id))

    def forget(self, workspace_id: str) -> None:
        """Close a workspace's connections (it was deleted, or its password changed)."""
        self._passwords.pop(workspace_id, None)
        engine = self._engines.pop(workspace_id, None)
        if engine is not None:
            self._dispose_later(engine)

    def _dispose_later(self, engine: TenantEngine) -> None:
        task = asyncio.get_running_loop().create_task(engine.pool.dispose())
        self._disposing.add(task)
        task.add_done_callback(self._disposing.discard)

    async def dispose(self) -> None:
        engines = list(self._engines.values())
        self._engines.clear()
        self._passwords.clear()
        await asyncio.gather(*(engine.pool.dispose() for engine in engines), *self._disposing, return_exceptions=True)
