"""`marid migrate` upgrades every workspace schema, reports a failing one by name, and resumes."""

from __future__ import annotations

import secrets
import shutil
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.config import DEV_ENCRYPTION_KEY
from app.db import Database, quote_ident, schema_for
from app.security.crypto import Keyring
from app.tenants.migrate import run_migrate, upgrade_all_workspaces
from app.tenants.provisioning import run_script
from app.tenants.scripts import TenantScripts, default_scripts
from app.workspaces.service import create_workspace, new_workspace_id
from migrations import TENANT_DIR
from tests.conftest import Services

NEXT_REVISION = '''"""Add a column (test revision).

Revision ID: t9001
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

from app.db import TENANT_SCHEMA

revision = "t9001"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("audit_events", sa.Column("severity", sa.String(16), server_default="info"), schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_column("audit_events", "severity", schema=TENANT_SCHEMA)
'''


def scripts_with_next_revision(tmp_path: Path) -> TenantScripts:
    """The project's tenant revisions plus one more, in a scratch copy."""
    current = TenantScripts()
    directory = tmp_path / "tenant"
    shutil.copytree(TENANT_DIR, directory)
    (directory / "versions" / "t9001_test.py").write_text(NEXT_REVISION.format(down=current.head))
    return TenantScripts(directory)


@pytest.fixture
async def fresh_db(services: Services) -> Database:
    url = await services.new_database(f"migrate_{secrets.token_hex(4)}")
    return Database(url, pool_size=6, keyring=Keyring(DEV_ENCRYPTION_KEY))


async def _make_workspaces(db: Database, count: int) -> list[str]:
    ids = []
    async with db.public_session() as session:
        for index in range(count):
            workspace = await create_workspace(session, name=f"W{index}", slug=f"w{index}-{secrets.token_hex(3)}")
            ids.append(workspace.id)
    return ids


async def _state(db: Database, workspace_id: str) -> tuple[str, str, bool]:
    """(version in the schema, version recorded in public, whether the new column exists)."""
    name = schema_for(workspace_id)
    async with db.engine.connect() as connection:
        version = await connection.scalar(text(f'SELECT version_num FROM "{name}".alembic_version'))
        recorded = await connection.scalar(
            text("SELECT schema_revision FROM public.workspaces WHERE id = :id"), {"id": workspace_id}
        )
        column = await connection.scalar(
            text(
                "SELECT count(*) FROM information_schema.columns WHERE table_schema = :s "
                "AND table_name = 'audit_events' AND column_name = 'severity'"
            ),
            {"s": name},
        )
    return str(version), str(recorded), bool(column)


async def test_upgrade_every_workspace_then_nothing_left(fresh_db: Database, tmp_path: Path) -> None:
    ids = await _make_workspaces(fresh_db, 6)
    scripts = scripts_with_next_revision(tmp_path)
    seen: list[tuple[int, int]] = []
    report = await upgrade_all_workspaces(
        fresh_db.engine, concurrency=3, scripts=scripts, progress=lambda d, t: seen.append((d, t))
    )
    assert report.ok and sorted(report.upgraded) == sorted(ids)
    assert seen[-1] == (6, 6)
    for workspace_id in ids:
        assert await _state(fresh_db, workspace_id) == ("t9001", "t9001", True)
    again = await upgrade_all_workspaces(fresh_db.engine, scripts=scripts)
    assert again.ok and again.pending == 0 and again.upgraded == []
    await fresh_db.dispose()


async def test_failure_names_the_schema_and_a_rerun_resumes(fresh_db: Database, tmp_path: Path) -> None:
    ids = await _make_workspaces(fresh_db, 8)
    previous_head = TenantScripts().head
    scripts = scripts_with_next_revision(tmp_path)
    broken = sorted(ids)[3]
    # Sabotage one schema: the column the new revision adds is already there.
    async with fresh_db.engine.begin() as connection:
        await connection.execute(text(f'ALTER TABLE "{schema_for(broken)}".audit_events ADD COLUMN severity int'))

    report = await upgrade_all_workspaces(fresh_db.engine, concurrency=2, scripts=scripts)
    assert report.failure is not None
    assert report.failure.schema == schema_for(broken)
    assert "severity" in report.failure.message
    for workspace_id in ids:
        version, recorded, _ = await _state(fresh_db, workspace_id)
        assert version == recorded, "the copy in public always matches the schema"
        assert version in {previous_head, "t9001"}
    assert (await _state(fresh_db, broken))[:2] == (previous_head, previous_head)
    assert len(report.upgraded) < len(ids)

    async with fresh_db.engine.begin() as connection:
        await connection.execute(text(f'ALTER TABLE "{schema_for(broken)}".audit_events DROP COLUMN severity'))
    resumed = await upgrade_all_workspaces(fresh_db.engine, concurrency=2, scripts=scripts)
    assert resumed.ok
    assert set(resumed.upgraded) | set(report.upgraded) == set(ids)
    assert not set(resumed.upgraded) & set(report.upgraded), "nothing is upgraded twice"
    for workspace_id in ids:
        assert await _state(fresh_db, workspace_id) == ("t9001", "t9001", True)
    await fresh_db.dispose()


async def test_cli_reports_the_failing_schema(
    fresh_db: Database, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ids = await _make_workspaces(fresh_db, 2)
    scripts = scripts_with_next_revision(tmp_path)
    async with fresh_db.engine.begin() as connection:
        await connection.execute(text(f'ALTER TABLE "{schema_for(ids[0])}".audit_events ADD COLUMN severity int'))
    code = await run_migrate(fresh_db.url, concurrency=1, scripts=scripts)
    assert code == 1
    err = capsys.readouterr().err
    assert f"schema {schema_for(ids[0])} failed" in err and "run `marid migrate` again" in err
    await fresh_db.dispose()


async def test_new_tables_and_columns_are_usable_by_the_workspace_role(fresh_db: Database, tmp_path: Path) -> None:
    """DDL runs as the owning application role; the grants are applied again after it."""
    [workspace_id] = await _make_workspaces(fresh_db, 1)
    scripts = scripts_with_next_revision(tmp_path)
    assert (await upgrade_all_workspaces(fresh_db.engine, scripts=scripts)).ok
    async with fresh_db.tenant_session(workspace_id) as session:
        await session.execute(
            text(f"INSERT INTO {schema_for(workspace_id)}.audit_events (action, severity) VALUES ('x', 'high')")
        )
        assert await session.scalar(text(f"SELECT severity FROM {schema_for(workspace_id)}.audit_events")) == "high"
        with pytest.raises(DBAPIError, match="permission denied"):
            await session.execute(text(f"UPDATE {schema_for(workspace_id)}.alembic_version SET version_num = 'x'"))
    await fresh_db.dispose()


async def test_workspaces_of_the_first_design_are_converted(fresh_db: Database) -> None:
    """Before login roles, a workspace role was NOLOGIN, owned its schema, and the app role was its member."""
    workspace_id = new_workspace_id()
    schema = schema_for(workspace_id)
    name = quote_ident(schema)
    async with fresh_db.engine.begin() as connection:
        await connection.execute(
            text("INSERT INTO public.workspaces (id, slug, name, schema_revision) VALUES (:id, :slug, 'Old', :rev)"),
            {"id": workspace_id, "slug": f"old-{workspace_id}", "rev": default_scripts.head},
        )
        await run_script(
            connection,
            f"CREATE ROLE {name} NOLOGIN NOINHERIT; GRANT {name} TO CURRENT_USER;"
            f"CREATE SCHEMA {name} AUTHORIZATION {name}; SET LOCAL ROLE {name};"
            + default_scripts.upgrade_sql_for(schema, None)
            + f"INSERT INTO {name}.audit_events (action) VALUES ('kept.from.before'); RESET ROLE;",
        )
    # Without the keyring the conversion cannot seal the new password: it says so and changes nothing.
    refused = await upgrade_all_workspaces(fresh_db.engine)
    assert refused.failure is not None and "keyring" in refused.failure.message

    report = await upgrade_all_workspaces(fresh_db.engine, role_secrets=fresh_db.role_secrets)
    assert report.ok and report.upgraded == [workspace_id]
    async with fresh_db.engine.connect() as connection:
        app_role = await connection.scalar(text("SELECT current_user"))
        owners = set(
            (
                await connection.execute(
                    text(
                        "SELECT relowner::regrole::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                        "WHERE n.nspname = :s UNION SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = :s"
                    ),
                    {"s": schema},
                )
            ).scalars()
        )
        members = await connection.scalar(
            text("SELECT count(*) FROM pg_auth_members WHERE roleid = CAST(:s AS regrole)"), {"s": schema}
        )
    assert owners == {app_role} and members == 0
    async with fresh_db.tenant_session(workspace_id) as session:
        assert await session.scalar(text("SELECT current_user")) == schema
        assert await session.scalar(text(f"SELECT action FROM {name}.audit_events")) == "kept.from.before"
        with pytest.raises(DBAPIError, match="permission denied"):
            await session.execute(text(f"DELETE FROM {name}.audit_events"))
    again = await upgrade_all_workspaces(fresh_db.engine, role_secrets=fresh_db.role_secrets)
    assert again.ok and again.pending == 0
    await fresh_db.dispose()


TABLE_REVISION = '''"""Add a table (test revision).

Revision ID: t9002
Revises: {down}
"""

import sqlalchemy as sa
from alembic import op

from app.db import TENANT_SCHEMA

revision = "t9002"
down_revision = "{down}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("notes", sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
                    sa.Column("body", sa.Text), schema=TENANT_SCHEMA)


def downgrade() -> None:
    op.drop_table("notes", schema=TENANT_SCHEMA)
'''


async def test_a_table_added_later_belongs_to_the_workspace_role_too(fresh_db: Database, tmp_path: Path) -> None:
    [workspace_id] = await _make_workspaces(fresh_db, 1)
    directory = tmp_path / "tenant-table"
    shutil.copytree(TENANT_DIR, directory)
    (directory / "versions" / "t9002_test.py").write_text(TABLE_REVISION.format(down=TenantScripts().head))
    assert (await upgrade_all_workspaces(fresh_db.engine, scripts=TenantScripts(directory))).ok
    schema = schema_for(workspace_id)
    async with fresh_db.tenant_session(workspace_id) as session:
        await session.execute(text(f"INSERT INTO {schema}.notes (body) VALUES ('first')"))
        await session.execute(text(f"UPDATE {schema}.notes SET body = 'edited'"))
        assert await session.scalar(text(f"SELECT body FROM {schema}.notes")) == "edited"
        await session.execute(text(f"DELETE FROM {schema}.notes"))
    await fresh_db.dispose()
