"""The pools keep the connections a busy moment made: the next burst reuses them instead of logging in again.

SQLAlchemy closes an *overflow* connection when it is checked in, so a pool with overflow below a steady load
opened a new PostgreSQL connection (a fork, SCRAM, a TLS attempt) on most requests. The app's pools have none.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager

from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database
from app.db.local import local_connect_args
from app.security.crypto import Keyring
from app.workspaces.service import create_workspace

Opener = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def _backends(open_session: Opener, concurrency: int) -> set[int]:
    """The backend pids that served ``concurrency`` sessions open at the same time."""
    started = asyncio.Event()
    waiting = 0

    async def one() -> int:
        nonlocal waiting
        async with open_session() as session:
            pid = int(await session.scalar(text("SELECT pg_backend_pid()")))
            waiting += 1
            if waiting == concurrency:
                started.set()
            await started.wait()  # every session holds its connection until all of them have one
            return pid

    return set(await asyncio.gather(*(one() for _ in range(concurrency))))


async def test_the_apps_public_pool_keeps_a_bursts_connections(settings: Settings, keyring: Keyring) -> None:
    db = settings.database(keyring)
    try:
        first = await _backends(db.public_session, 16)
        second = await _backends(db.public_session, 16)
        assert len(first) == 16
        assert second == first  # no log-in the second time
    finally:
        await db.dispose()


async def test_a_workspaces_pool_keeps_its_connections(settings: Settings, keyring: Keyring) -> None:
    db = settings.database(keyring)
    try:
        async with db.public_session() as session:
            workspace = await create_workspace(session, name="pool", slug=f"pool-{secrets.token_hex(4)}")

        def tenant() -> AbstractAsyncContextManager[AsyncSession]:
            return db.tenant_session(workspace.id)

        connections = settings.tenant_pool_connections
        first = await _backends(tenant, connections)
        second = await _backends(tenant, connections)
        assert len(first) == connections
        assert second == first
        # A burst larger than the pool waits for a connection rather than opening one beyond it.
        more = await asyncio.wait_for(_gather_waiting(db, workspace.id, connections * 2), timeout=10)
        assert more <= first
    finally:
        await db.dispose()


async def _gather_waiting(db: Database, workspace_id: str, count: int) -> set[int]:
    async def one() -> int:
        async with db.tenant_session(workspace_id) as session:
            pid = int(await session.scalar(text("SELECT pg_backend_pid()")))
            await asyncio.sleep(0.05)
            return pid

    return set(await asyncio.gather(*(one() for _ in range(count))))


def test_tls_is_skipped_only_for_local_servers_that_name_no_mode() -> None:
    def args(url: str) -> dict[str, object]:
        return local_connect_args(make_url(url))

    assert args("postgresql+asyncpg://marid@127.0.0.1:5432/marid") == {"ssl": False}
    assert args("postgresql+asyncpg://marid@localhost/marid") == {"ssl": False}
    assert args("postgresql+asyncpg://marid@[::1]:5432/marid") == {"ssl": False}
    assert args("postgresql+asyncpg://marid@/marid?host=/run/postgresql") == {"ssl": False}
    assert args("postgresql+asyncpg://marid@db.example.com/marid") == {}
    assert args("postgresql+asyncpg://marid@10.0.0.5/marid") == {}
    assert args("postgresql+asyncpg://marid@127.0.0.1/marid?ssl=require") == {}
    assert args("postgresql+asyncpg://marid@localhost/marid?sslmode=verify-full") == {}
