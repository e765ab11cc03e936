"""A workspace session reaches its own schema only: Postgres itself refuses everything else.

What the database enforces, pinned here: a tenant session is a connection logged in as the workspace's own
role, which holds privileges in its own schema only and is a member of no other role. So a query bug (a
wrong table, a missing filter) and also arbitrary SQL (``SET ROLE``, ``set_config('role', ...)``,
``SET SESSION AUTHORIZATION``) cannot reach another workspace or the platform tables.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, InvalidRequestError

from app.audit.models import AuditEvent
from app.auth.models import User, UserSession
from app.db import Database, schema_for
from app.tenants.models import Workspace
from app.workspaces.service import create_workspace


async def _workspace(db: Database, label: str) -> Workspace:
    async with db.public_session() as session:
        return await create_workspace(session, name=label, slug=f"{label}-{secrets.token_hex(4)}")


@pytest.fixture
async def two_workspaces(db: Database) -> tuple[Workspace, Workspace]:
    first, second = await _workspace(db, "alpha"), await _workspace(db, "beta")
    async with db.tenant_session(second.id) as session:
        session.add(AuditEvent(action="beta.secret", details={"note": "only beta may read this"}))
    async with db.public_session() as session:
        user = User(email=f"{secrets.token_hex(4)}@example.com", password_hash="$argon2id$not-a-real-hash")
        session.add(user)
        await session.flush()
        session.add(
            UserSession(
                user_id=user.id, token_hash=secrets.token_hex(32), expires_at=datetime.now(UTC) + timedelta(days=1)
            )
        )
    return first, second


async def _count(db: Database, workspace: Workspace) -> int:
    async with db.tenant_session(workspace.id) as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def test_orm_lands_in_own_schema(db: Database, two_workspaces: tuple[Workspace, Workspace]) -> None:
    alpha, beta = two_workspaces
    before = await _count(db, beta)
    async with db.tenant_session(alpha.id) as session:
        session.add(AuditEvent(action="alpha.write"))
    assert await _count(db, alpha) == 1
    assert await _count(db, beta) == before
    async with db.tenant_session(alpha.id) as session:
        actions = (await session.scalars(select(AuditEvent.action))).all()
    assert actions == ["alpha.write"]


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT * FROM {other}.audit_events",
        "INSERT INTO {other}.audit_events (action) VALUES ('forged')",
        "UPDATE {other}.audit_events SET action = 'tampered'",
        "DELETE FROM {other}.audit_events",
        "DROP TABLE {other}.audit_events",
        "CREATE TABLE {other}.planted (id int)",
    ],
)
async def test_raw_sql_cannot_reach_another_workspace(
    db: Database, two_workspaces: tuple[Workspace, Workspace], statement: str
) -> None:
    alpha, beta = two_workspaces
    with pytest.raises(DBAPIError, match="permission denied"):
        async with db.tenant_session(alpha.id) as session:
            await session.execute(text(statement.format(other=schema_for(beta.id))))
    assert await _count(db, beta) == 1
    async with db.tenant_session(beta.id) as session:
        assert await session.scalar(select(AuditEvent.action)) == "beta.secret"


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT password_hash FROM public.users",
        "SELECT token_hash FROM public.user_sessions",
        "SELECT * FROM public.workspaces",
        "UPDATE public.users SET password_hash = 'x'",
        "CREATE TABLE public.planted (id int)",
    ],
)
async def test_cannot_read_platform_secrets(
    db: Database, two_workspaces: tuple[Workspace, Workspace], statement: str
) -> None:
    alpha, _ = two_workspaces
    with pytest.raises(DBAPIError, match="permission denied"):
        async with db.tenant_session(alpha.id) as session:
            await session.execute(text(statement))


async def test_orm_model_of_platform_is_refused_too(db: Database, two_workspaces: tuple[Workspace, Workspace]) -> None:
    alpha, _ = two_workspaces
    with pytest.raises(DBAPIError, match="permission denied"):
        async with db.tenant_session(alpha.id) as session:
            await session.scalars(select(User.password_hash))


async def test_nothing_runs_after_a_stray_commit(db: Database, two_workspaces: tuple[Workspace, Workspace]) -> None:
    """Services never commit; if one did, the session refuses further work instead of running without the role."""
    alpha, beta = two_workspaces
    with pytest.raises(InvalidRequestError, match="closed transaction"):
        async with db.tenant_session(alpha.id) as session:
            await session.commit()
            await session.execute(text(f"SELECT * FROM {schema_for(beta.id)}.audit_events"))


async def test_current_user_is_the_workspace_role(db: Database, two_workspaces: tuple[Workspace, Workspace]) -> None:
    alpha, _ = two_workspaces
    async with db.tenant_session(alpha.id) as session:
        assert await session.scalar(text("SELECT current_user")) == schema_for(alpha.id)
        assert await session.scalar(text("SELECT rolsuper FROM pg_roles WHERE rolname = current_user")) is False


@pytest.mark.parametrize("bad", ["", "ABCDEFGHIJKL", "abc", "abcdefghijk;", "public", "abcdefghijkl'"])
def test_schema_names_come_only_from_workspace_ids(bad: str) -> None:
    with pytest.raises(ValueError, match="not a workspace id"):
        schema_for(bad)


@pytest.mark.parametrize(
    "statement",
    [
        "SET ROLE {other}",
        "SET LOCAL ROLE {other}",
        "SELECT set_config('role', '{other}', false)",
        "SELECT set_config('role', '{app}', true)",
        "SET ROLE {app}",
        "SET SESSION AUTHORIZATION {other}",
        "SET SESSION AUTHORIZATION {app}",
        "RESET ROLE; SELECT * FROM {other}.audit_events",
        "CREATE TEMP TABLE stash (x text)",
        "CREATE SCHEMA planted",
        "CREATE ROLE planted",
        "GRANT {other} TO {own}",
        "COPY (SELECT 1) TO '/tmp/marid-copy-test'",
        "SELECT pg_read_file('/etc/passwd')",
    ],
)
async def test_arbitrary_sql_cannot_become_another_workspace(
    db: Database, two_workspaces: tuple[Workspace, Workspace], statement: str
) -> None:
    """Unlike ``SET LOCAL ROLE`` from a shared login, a workspace's own login cannot switch identities."""
    alpha, beta = two_workspaces
    async with db.engine.connect() as connection:
        app_role = await connection.scalar(text("SELECT current_user"))
    sql = statement.format(other=schema_for(beta.id), own=schema_for(alpha.id), app=app_role)
    with pytest.raises(DBAPIError, match="permission denied|must be|must have admin option"):
        async with db.tenant_session(alpha.id) as session:
            for part in sql.split("; "):
                await session.execute(text(part))
    # And the connection it ran on is still only alpha.
    async with db.tenant_session(alpha.id) as session:
        assert await session.scalar(text("SELECT current_user")) == schema_for(alpha.id)
        assert await session.scalar(text("SELECT session_user")) == schema_for(alpha.id)
