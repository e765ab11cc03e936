"""Statements sent by asyncpg itself (``app.db.direct``) give exactly what SQLAlchemy's execution gives, bound to
the right schema, and keep the pool healthy."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy import bindparam, func, literal, select, text

from app.apikeys.auth import _BY_LOOKUP_ID
from app.audit.models import AuditEvent
from app.auth.models import User
from app.auth.sessions import _SIGNED_IN, start_session
from app.config import Settings
from app.db import Database
from app.db.base import schema_for
from app.db.direct import DirectQuery
from app.security.tokens import token_hash
from app.workspaces.live import _feed_with
from tests.apikeys.helpers import make_key
from tests.conftest import Services
from tests.helpers import add_member, make_user, make_workspace


async def _through_sqlalchemy(
    db: Database, query: DirectQuery, params: dict[str, object], workspace_id: str = ""
) -> list[tuple[object, ...]]:
    if workspace_id:
        async with db.tenant_session(workspace_id) as session:
            return [tuple(row) for row in await session.execute(query.statement, params)]
    async with db.public_session() as session:
        return [tuple(row) for row in await session.execute(query.statement, params)]


async def test_the_hot_statements_give_what_sqlalchemy_gives(db: Database, settings: Settings) -> None:
    owner = await make_user(db, "direct")
    workspace = await make_workspace(db, owner, "direct")
    await add_member(db, await make_workspace(db, await make_user(db, "other"), "direct-b"), owner, "viewer")
    async with db.public_session() as session:
        token, _ = await start_session(session, settings, owner, ip="127.0.0.1", user_agent="direct")
    key, _ = await make_key(db, workspace, owner, "owner")
    cases: list[tuple[DirectQuery, dict[str, object]]] = [
        (_SIGNED_IN, {"token_hash": token_hash(token)}),  # a row per workspace: two
        (_BY_LOOKUP_ID, {"lookup_id": key.lookup_id}),
    ]
    for query, params in cases:
        async with db.direct() as connection:
            direct_rows = await connection.fetch(query, params)
        expected = await _through_sqlalchemy(db, query, params)
        assert direct_rows and direct_rows == expected
        assert [type(value) for value in direct_rows[0]] == [type(value) for value in expected[0]]

    feed = _feed_with(frozenset({"workspace.view", "audit.view"}), (("anything", literal(True)),))
    async with db.direct(workspace.id) as connection:
        direct_rows = await connection.fetch(feed, {"limit": 20})
    expected = await _through_sqlalchemy(db, feed, {"limit": 20}, workspace.id)
    assert len(direct_rows) >= 1 and direct_rows == expected


async def test_a_tenant_statement_runs_in_its_own_workspace_only(db: Database) -> None:
    owner = await make_user(db, "direct-two")
    first = await make_workspace(db, owner, "direct-one")
    second = await make_workspace(db, owner, "direct-two")
    count = DirectQuery(select(func.count()).select_from(AuditEvent).where(AuditEvent.action == bindparam("action")))
    assert count.tenant
    for workspace in (first, second):
        async with db.tenant_session(workspace.id) as session:
            expected = await session.scalar(count.statement, {"action": "workspace.created"})
        async with db.direct(workspace.id) as connection:
            assert await connection.fetch(count, {"action": "workspace.created"}) == [(expected,)]
        assert f"{schema_for(workspace.id)}.audit_events" in count.sql(schema_for(workspace.id))
    # The connection logs in as the workspace's role, which can read no other workspace's schema.
    async with db.direct(first.id) as connection:
        forged = DirectQuery(select(func.count()).select_from(text(f"{schema_for(second.id)}.audit_events")))
        with pytest.raises(asyncpg.PostgresError):
            await connection.fetch(forged)
    # A workspace's statement on the platform's connection is refused before anything is sent.
    async with db.direct() as connection:
        with pytest.raises(ValueError, match="workspace"):
            await connection.fetch(count, {"action": "workspace.created"})


def test_expanding_parameters_are_refused_when_built() -> None:
    with pytest.raises(ValueError, match="ANY"):
        DirectQuery(select(User.id).where(User.email.in_(["a@example.com", "b@example.com"])))


async def test_a_connection_that_failed_is_not_given_back_as_healthy(services: Services, database_url: str) -> None:
    db = Database(database_url, pool_size=1, overflow=0)
    pid = DirectQuery(select(func.pg_backend_pid()))
    try:
        async with db.direct() as connection:
            [(first,)] = await connection.fetch(pid)
        superuser = await asyncpg.connect(services.postgres.superuser_dsn())
        try:
            assert await superuser.fetchval("SELECT pg_terminate_backend($1)", first)
        finally:
            await superuser.close()
        # Used a moment ago, so the pool does not ping it: the statement meets the dead connection...
        with pytest.raises((asyncpg.PostgresError, asyncpg.InterfaceError, asyncpg.InternalClientError, OSError)):
            async with db.direct() as connection:
                await connection.fetch(pid)
        # ...which is invalidated, so the next request gets a new one at once.
        async with db.direct() as connection:
            [(second,)] = await connection.fetch(pid)
        assert second != first
    finally:
        await db.dispose()
