"""Helpers for member, settings and audit tests: people and workspaces made directly in the database, an HTTP
client signed in through the real login form, and a live server whose mail links point at itself."""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.auth.models import User
from app.auth.sessions import now
from app.db import Database
from app.security.passwords import hash_password
from app.tenants.models import Membership, Workspace
from app.tenants.service import create_workspace
from tests.browser import STRONG_PASSWORD
from tests.servers import web_server

_PASSWORD_HASH = hash_password(STRONG_PASSWORD)


async def make_user(db: Database, label: str = "user", *, name: str = "") -> User:
    """A confirmed account whose password is ``STRONG_PASSWORD``."""
    async with db.public_session() as session:
        user = User(
            email=f"{label}-{secrets.token_hex(4)}@example.com",
            display_name=name or label.title(),
            password_hash=_PASSWORD_HASH,
            email_verified_at=now(),
            password_changed_at=now(),
        )
        session.add(user)
        await session.flush()
        return user


async def make_workspace(db: Database, owner: User, label: str = "team") -> Workspace:
    async with db.public_session() as session:
        return await create_workspace(
            session, name=f"{label.title()} Team", slug=f"{label}-{secrets.token_hex(4)}", owner_id=owner.id
        )


async def add_member(db: Database, workspace: Workspace, user: User, role: str) -> None:
    async with db.public_session() as session:
        session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=role))


async def role_of(db: Database, workspace_id: str, user_id: uuid.UUID) -> str | None:
    async with db.public_session() as session:
        return await session.scalar(
            select(Membership.role).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.public_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def random_ip() -> str:
    # Each client gets its own address, so per-IP rate limits of one test never reach another.
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


def log_in(client: TestClient, email: str, password: str = STRONG_PASSWORD) -> None:
    """Sign in through the login form, as a browser would."""
    token = csrf_of(client.get("/login").text)
    response = client.post("/login", data={"csrf_token": token, "email": email, "password": password})
    assert response.status_code == 303, response.text


def post(client: TestClient, page: str, action: str, data: dict[str, str] | None = None) -> Any:
    """Open ``page`` to get its CSRF token (as a browser would), then submit ``data`` to ``action``."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **(data or {})})


def live_server(env: dict[str, str], timeout: float = 30) -> Iterator[str]:
    """`marid web` on a free port whose mailed links point at itself (see tests.servers.web_server)."""
    return web_server(env, timeout)
