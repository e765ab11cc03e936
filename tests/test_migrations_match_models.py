"""The Alembic revisions build exactly the tables the models describe (no drift either way)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection, MetaData
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from app.db import Database, TenantBase, schema_for
from app.models import PublicBase
from app.workspaces.service import create_workspace


@pytest.fixture
async def inspecting_engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    # With "public" as the default schema Alembic would reflect it as schema None and report every table as
    # missing; a search_path without it makes "public" an ordinary, named schema.
    engine = create_async_engine(database_url, connect_args={"server_settings": {"search_path": "pg_catalog"}})
    yield engine
    await engine.dispose()


def _diff(connection: Connection, metadata: MetaData) -> list[str]:
    schemas = {table.schema for table in metadata.tables.values()}

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        if type_ == "schema":
            return name in schemas
        return name != "alembic_version"

    opts: dict[str, Any] = {"include_schemas": True, "compare_type": True, "include_name": include_name}
    context = MigrationContext.configure(connection, opts=opts)
    return [str(change)[:200] for change in compare_metadata(context, metadata)]


async def test_public_schema_matches_models(inspecting_engine: AsyncEngine) -> None:
    async with inspecting_engine.connect() as connection:
        assert await connection.run_sync(lambda sync: _diff(sync, PublicBase.metadata)) == []


async def test_tenant_schema_matches_models(db: Database, inspecting_engine: AsyncEngine) -> None:
    async with db.public_session() as session:
        workspace = await create_workspace(session, name="Drift", slug="drift-check")
    concrete = MetaData(naming_convention=TenantBase.metadata.naming_convention)
    for table in TenantBase.metadata.tables.values():
        table.to_metadata(concrete, schema=schema_for(workspace.id))
    async with inspecting_engine.connect() as connection:
        assert await connection.run_sync(lambda sync: _diff(sync, concrete)) == []
