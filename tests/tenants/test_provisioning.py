"""Provisioning creates role + schema + tables at head in one transaction; deleting drops both."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select, text

from app.db import Database, schema_for
from app.tenants.models import Workspace
from app.tenants.scripts import default_scripts
from app.workspaces.service import WorkspaceError, create_workspace, delete_workspace


async def _exists(db: Database, workspace_id: str) -> dict[str, bool]:
    name = schema_for(workspace_id)
    async with db.engine.connect() as connection:
        role = await connection.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :n"), {"n": name})
        schema = await connection.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = :n"), {"n": name})
        row = await connection.scalar(
            text("SELECT count(*) FROM public.workspaces WHERE id = :id"), {"id": workspace_id}
        )
    return {"role": bool(role), "schema": bool(schema), "row": bool(row)}


async def test_provision_then_deprovision(db: Database) -> None:
    async with db.public_session() as session:
        workspace = await create_workspace(session, name="Acme", slug=f"acme-{secrets.token_hex(3)}")
    assert await _exists(db, workspace.id) == {"role": True, "schema": True, "row": True}
    name = schema_for(workspace.id)
    async with db.engine.connect() as connection:
        version = await connection.scalar(text(f'SELECT version_num FROM "{name}".alembic_version'))
        owners = set(
            (
                await connection.execute(text("SELECT tableowner FROM pg_tables WHERE schemaname = :s"), {"s": name})
            ).scalars()
        )
        role = (
            await connection.execute(
                text("SELECT rolcanlogin, rolsuper, rolcreaterole, rolinherit FROM pg_roles WHERE rolname = :n"),
                {"n": name},
            )
        ).one()
        app_role = await connection.scalar(text("SELECT current_user"))
        schema_owner = await connection.scalar(
            text("SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :n"), {"n": name}
        )
        memberships = await connection.scalar(
            text(
                "SELECT count(*) FROM pg_auth_members WHERE roleid = CAST(:n AS regrole) "
                "OR member = CAST(:n AS regrole) OR member = CAST(current_user AS regrole)"
            ),
            {"n": name},
        )
    assert version == default_scripts.head == workspace.schema_revision
    assert owners == {app_role} and schema_owner == app_role, "the application role owns schema and tables"
    assert tuple(role) == (True, False, False, False), "a plain login role"
    assert memberships == 0, "no role is a member of another: the workspace role cannot become anyone else"

    async with db.public_session() as session:
        loaded = await session.get(Workspace, workspace.id)
        assert loaded is not None
        await delete_workspace(session, loaded)
    assert await _exists(db, workspace.id) == {"role": False, "schema": False, "row": False}


async def test_failed_provisioning_leaves_nothing(db: Database) -> None:
    slug = f"doomed-{secrets.token_hex(3)}"
    created: list[str] = []
    with pytest.raises(RuntimeError, match="after provisioning"):
        async with db.public_session() as session:
            workspace = await create_workspace(session, name="Doomed", slug=slug)
            created.append(workspace.id)
            raise RuntimeError("the request failed after provisioning")
    assert await _exists(db, created[0]) == {"role": False, "schema": False, "row": False}


@pytest.mark.parametrize(
    ("name", "slug", "message"),
    [
        ("", "fine", "name must be"),
        ("x" * 121, "fine", "name must be"),
        ("Fine", "", "URL name must be"),
        ("Fine", "-bad", "URL name must be"),
        ("Fine", "Has Space", "URL name must be"),
        ("Fine", "x" * 49, "URL name must be"),
        ("Fine", "api", "reserved"),
    ],
)
async def test_bad_input_is_refused_and_changes_nothing(db: Database, name: str, slug: str, message: str) -> None:
    async with db.engine.connect() as connection:
        before = await connection.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'ws\\_%'"))
    with pytest.raises(WorkspaceError, match=message):
        async with db.public_session() as session:
            await create_workspace(session, name=name, slug=slug)
    async with db.engine.connect() as connection:
        after = await connection.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname LIKE 'ws\\_%'"))
    assert before == after


async def test_taken_slug_is_refused(db: Database) -> None:
    slug = f"taken-{secrets.token_hex(3)}"
    async with db.public_session() as session:
        await create_workspace(session, name="First", slug=slug)
    with pytest.raises(WorkspaceError, match="taken"):
        async with db.public_session() as session:
            await create_workspace(session, name="Second", slug=slug)
    async with db.public_session() as session:
        assert len((await session.scalars(select(Workspace).where(Workspace.slug == slug))).all()) == 1


async def test_deleting_is_all_or_nothing_even_as_the_first_statement(db: Database) -> None:
    """Dropping the schema is the first statement of the transaction: a failure after it must undo it."""
    async with db.public_session() as session:
        workspace = await create_workspace(session, name="Kept", slug=f"kept-{secrets.token_hex(3)}")
    with pytest.raises(RuntimeError, match="later step failed"):
        async with db.engine.begin() as connection:
            from app.tenants.provisioning import drop_workspace_schema

            await drop_workspace_schema(connection, workspace.id)
            raise RuntimeError("a later step failed")
    assert await _exists(db, workspace.id) == {"role": True, "schema": True, "row": True}
