"""A signed-in workspace owner, for the tests that walk every page."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.helpers import http_client, log_in, workspace_with


@pytest.fixture
async def owner_client(settings: Settings, db: Database) -> AsyncIterator[tuple[TestClient, dict[str, str]]]:
    workspace, (owner, member) = await workspace_with(db, f"garbage-{secrets.token_hex(3)}", ["member"])
    with http_client(create_app(settings)) as client:
        log_in(client, owner.email)
        yield client, {"slug": workspace.slug, "user_id": str(member.id)}
