"""The audit log is append-only in the database itself, even for the workspace role that owns the table."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import delete, func, select, text, update
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditEvent
from app.audit.service import record
from app.db import Database, schema_for
from app.tenants.migrations import upgrade_workspace
from app.tenants.models import Workspace
from app.tenants.scripts import TenantScripts, default_scripts
from app.tenants.service import create_workspace
from migrations import TENANT_DIR


@pytest.fixture
async def workspace(db: Database) -> Workspace:
    async with db.public_session() as session:
        created = await create_workspace(session, name="Ledger", slug=f"ledger-{secrets.token_hex(4)}")
    await record(db, created.id, "member.invited", actor_id=None, ip="203.0.113.7", details={"email": "a@b.c"})
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
    ],
    ids=["update-all", "update-one", "delete-orm", "delete-raw", "truncate"],
)
async def test_update_delete_truncate_are_refused(db: Database, workspace: Workspace, statement: object) -> None:
    before = await _events(db, workspace)
    with pytest.raises(DBAPIError, match="append-only") as refusal:
        async with db.tenant_session(workspace.id) as session:
            # Raw text is not schema-translated: point it at this workspace's schema by hand.
            if hasattr(statement, "text"):
                statement = text(statement.text.replace("marid_tenant.", f"{schema_for(workspace.id)}."))
            await session.execute(statement)  # type: ignore[call-overload]
    assert "permission denied" in str(refusal.value)
    assert await _events(db, workspace) == before


async def test_the_refusal_holds_for_the_owning_role(db: Database, workspace: Workspace) -> None:
    """The workspace role owns the table (so REVOKE could not stop it); the trigger still refuses."""
    schema = schema_for(workspace.id)
    async with db.tenant_session(workspace.id) as session:
        owner = await session.scalar(
            text("SELECT tableowner FROM pg_tables WHERE schemaname = :s AND tablename = 'audit_events'"), {"s": schema}
        )
        assert owner == await session.scalar(text("SELECT current_user")) == schema
        triggers = await session.scalar(
            text(
                "SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE n.nspname = :s AND c.relname = 'audit_events' AND NOT t.tgisinternal"
            ),
            {"s": schema},
        )
        assert triggers == 2
        # The trigger function lives in the workspace's own schema, not in public.
        function_schema = await session.scalar(
            text(
                "SELECT n.nspname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace "
                "WHERE p.proname = 'audit_append_only' AND n.nspname = :s"
            ),
            {"s": schema},
        )
        assert function_schema == schema


async def test_appending_still_works(db: Database, workspace: Workspace) -> None:
    before = len(await _events(db, workspace))
    await record(db, workspace.id, "settings.changed", actor_id=None, details={"name": {"from": "a", "to": "b"}})
    async with db.tenant_session(workspace.id) as session:
        assert await session.scalar(select(func.count()).select_from(AuditEvent)) == before + 1


async def test_existing_workspaces_become_append_only_when_migrated(db: Database, tmp_path: Path) -> None:
    """A workspace provisioned before t0002 gets the trigger from `marid migrate`."""
    directory = tmp_path / "tenant"
    shutil.copytree(TENANT_DIR, directory)
    for later in directory.glob("versions/t*.py"):
        if not later.name.startswith("t0001_"):
            later.unlink()
    old = TenantScripts(directory)
    assert old.head == "t0001"
    async with db.public_session() as session:
        workspace = await create_workspace(session, name="Old", slug=f"old-{secrets.token_hex(4)}", scripts=old)
    await record(db, workspace.id, "member.invited", actor_id=None)
    async with db.tenant_session(workspace.id) as session:
        await session.execute(update(AuditEvent).values(ip="rewritten-before-t0002"))

    assert await upgrade_workspace(db.engine, workspace.id, default_scripts)
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.tenant_session(workspace.id) as session:
            await session.execute(delete(AuditEvent))
    assert [ip for _, _, ip in await _events(db, workspace)] == ["rewritten-before-t0002"]
