"""A pooled connection that died while idle is replaced before use; a fresh one is not pinged at all."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy import text

from app.db import Database
from app.db.pinging import ping_when_idle
from tests.conftest import Services


async def test_an_idle_connection_killed_by_the_server_is_replaced(services: Services, database_url: str) -> None:
    db = Database(database_url, pool_size=1)
    ping_when_idle(db.engine, idle_seconds=0.2)  # a second listener with a short idle time, for the test
    try:
        async with db.engine.connect() as connection:
            first_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        superuser = await asyncpg.connect(services.postgres.superuser_dsn())
        try:
            assert await superuser.fetchval("SELECT pg_terminate_backend($1)", first_pid)
        finally:
            await superuser.close()
        await asyncio.sleep(0.3)
        async with db.engine.connect() as connection:
            second_pid = await connection.scalar(text("SELECT pg_backend_pid()"))
        assert second_pid != first_pid
    finally:
        await db.dispose()
