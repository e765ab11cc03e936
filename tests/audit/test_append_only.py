"""The audit log is append-only in the database itself.

The workspace role may only INSERT and SELECT (it owns nothing, so it cannot take rights back or switch the
trigger off), and a trigger refuses UPDATE, DELETE and TRUNCATE even to the owning application role.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database, schema_for
from app.tenants.models import Workspace
from app.workspaces.service import create_workspace
from tests.helpers import audit


@pytest.fixture
async def workspace(db: Database, settings: Settings) -> Workspace:
    async with db.public_session() as session:
        created = await create_workspace(session, name="Ledger", slug=f"ledger-{secrets.token_hex(4)}")
    await audit(db, settings, created.id, "member.invited", None, {"email": "a@b.c"}, ip="203.0.113.7")
    return created


async def _events(db: Database, workspace: Workspace) -> list[tuple[int, str, str]]:
    async with db.tenant_session(workspace.id) as session:
        rows = await session.execute(select(AuditEvent.id, AuditEvent.action, AuditEvent.ip).order_by(AuditEvent.id))
        return [(i, a, p) for i, a, p in rows]


@pytest.mark.parametrize(
    "statement",
    [
        update(AuditEvent).values(action="tampered"),
        update(AuditEvent).values(ip="").where(AuditEvent.action == "member.invited"),
        delete(AuditEvent),
        text("DELETE FROM marid_tenant.audit_events WHERE true"),
        text("TRUNCATE marid_tenant.audit_events"),
        text("ALTER TABLE marid_tenant.audit_events DISABLE TRIGGER USER"),
        text("DROP TRIGGER audit_events_append_only ON marid_tenant.audit_events"),
        text("ALTER TABLE marid_tenant.audit_events OWNER TO CURRENT_USER"),
        text("GRANT UPDATE ON marid_tenant.audit_events TO CURRENT_USER"),
    ],
    ids=[
        "update-all",
        "update-one",
        "delete-orm",
        "delete-raw",
        "truncate",
        "disable-trigger",
        "drop-trigger",
        "take-ownership",
        "grant-self",
    ],
)
async def test_the_workspace_role_cannot_change_history(db: Database, workspace: Workspace, statement: object) -> None:
    before = await _events(db, workspace)
    with pytest.raises(DBAPIError, match="permission denied|must be owner|no privileges were granted") as refusal:
        async with db.tenant_session(workspace.id) as session:
            # Raw text is not schema-translated: point it at this workspace's schema by hand.
            if hasattr(statement, "text"):
                statement = text(statement.text.replace("marid_tenant.", f"{schema_for(workspace.id)}."))
            await session.execute(statement)  # type: ignore[call-overload]
            # GRANT on an object one does not own is only a warning; prove it changed nothing.
            await session.execute(update(AuditEvent).values(action="tampered"))
    assert refusal.value is not None
    assert await _events(db, workspace) == before


@pytest.mark.parametrize(
    "statement",
    ["UPDATE {s}.audit_events SET action = 'tampered'", "DELETE FROM {s}.audit_events", "TRUNCATE {s}.audit_events"],
)
async def test_even_the_owning_application_role_cannot(db: Database, workspace: Workspace, statement: str) -> None:
    """A bug in code running as the application role (which owns the table) meets the trigger."""
    before = await _events(db, workspace)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.engine.begin() as connection:
            await connection.execute(text(statement.format(s=schema_for(workspace.id))))
    assert await _events(db, workspace) == before


async def test_who_owns_what(db: Database, workspace: Workspace) -> None:
    schema = schema_for(workspace.id)
    async with db.engine.connect() as connection:
        app_role = await connection.scalar(text("SELECT current_user"))
        owner = await connection.scalar(
            text("SELECT tableowner FROM pg_tables WHERE schemaname = :s AND tablename = 'audit_events'"), {"s": schema}
        )
        privileges = await connection.scalar(
            text(
                "SELECT string_agg(privilege_type, ',' ORDER BY privilege_type) "
                "FROM information_schema.table_privileges "
                "WHERE table_schema = :s AND table_name = 'audit_events' AND grantee = :s"
            ),
            {"s": schema},
        )
        triggers = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = 'audit_events' AND NOT t.tgisinternal"
            ),
            {"s": schema},
        )
        # The trigger function lives in the workspace's own schema, not in public.
        function_schema = await connection.scalar(
            text(
                "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'audit_append_only' AND n.nspname = :s"
            ),
            {"s": schema},
        )
    assert owner == app_role != schema
    assert privileges == "INSERT,SELECT"
    assert triggers == 2
    assert function_schema == schema


async def test_appending_still_works(db: Database, settings: Settings, workspace: Workspace) -> None:
    before = len(await _events(db, workspace))
    await audit(db, settings, workspace.id, "settings.changed", None, {"name": {"from": "a", "to": "b"}})
    async with db.tenant_session(workspace.id) as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == before + 1


async def test_append_only_tables_are_marked_on_their_models() -> None:
    import app.models  # noqa: F401  (every model, so the metadata is complete)
    from app.db import TenantBase
    from app.tenants.grants import APPEND_ONLY_TABLES

    marked = {table.name for table in TenantBase.metadata.tables.values() if table.info.get("append_only")}
    assert marked == APPEND_ONLY_TABLES
