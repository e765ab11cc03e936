"""Helpers for API key tests: keys made through the service, read back and changed directly in the database."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import update

from app.apikeys.models import ApiKey
from app.apikeys.service import Actor, create_key
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.tenants.models import Workspace
from app.tenants.permissions import Role
from tests.helpers import changes


async def make_key(
    db: Database,
    workspace: Workspace,
    creator: User,
    role: str,
    *,
    kind: str = "personal",
    scope: str = "read",
    expires_at: datetime | None = None,
    name: str = "test key",
    settings: Settings | None = None,
) -> tuple[ApiKey, str]:
    """A key made the way the page makes it; ``role`` is the creator's role in the workspace. With ``settings``
    its audit entry is relayed into the workspace's log at once, as a request's would be."""
    actor = Actor(user_id=creator.id, role=Role(role))
    unit = changes(db, settings) if settings is not None else db.public_session()
    async with unit as session:
        return await create_key(
            session, workspace_id=workspace.id, actor=actor, name=name, kind=kind, scope=scope, expires_at=expires_at
        )


async def set_key(db: Database, key: ApiKey, **values: Any) -> None:
    async with db.public_session() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(**values))


async def load_key(db: Database, key: ApiKey) -> ApiKey:
    async with db.public_session() as session:
        row = await session.get(ApiKey, key.id, populate_existing=True)
        assert row is not None
        return row


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}
