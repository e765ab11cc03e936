"""Helpers shared by the tests: people and workspaces made straight in the database, TestClients used like one
browser each (an address of their own, the CSRF token taken from the page, sign-in through the real form), and
the routes of an application by path.

The helper modules of the test packages (``tests/members/helpers.py``, ``tests/sso/helpers.py``, ...) import
from here and keep offering these names, so a test imports from its own package's helpers or from here.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any

from httpx2 import Response
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient
from starlette.types import ASGIApp

from app.audit.actor import Actor
from app.audit.service import record
from app.audit.unit_of_work import public_change
from app.auth.models import User
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus
from app.security.passwords import hash_password
from app.tenants.context import person_actor
from app.tenants.models import Membership, Workspace
from app.workspaces.service import create_workspace
from tests.browser import STRONG_PASSWORD, unique_email

__all__ = [
    "STRONG_PASSWORD",
    "Team",
    "add_member",
    "audit",
    "changes",
    "count",
    "csrf_of",
    "http_client",
    "log_in",
    "make_user",
    "make_workspace",
    "person",
    "post",
    "post_form",
    "random_ip",
    "role_of",
    "routes_under",
    "sign_in",
    "unique_email",
    "workspace_with",
]

# The (public) hash of the password, made once: argon2 takes ~0.1 s.
_PASSWORD_HASH = hash_password(STRONG_PASSWORD)


# ------------------------------------------------------------------------------------ people and workspaces


async def make_user(db: Database, label: str = "user", *, name: str = "", email: str | None = None) -> User:
    """A confirmed account whose password is ``STRONG_PASSWORD``; named ``name`` (else after ``label``), at
    ``email`` (else a fresh address made from ``label``)."""
    async with db.public_session() as session:
        user = User(
            email=email or f"{label}-{secrets.token_hex(4)}@example.com",
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


async def workspace_with(
    db: Database, label: str, roles: Iterable[str], *, prefix: str = ""
) -> tuple[Workspace, list[User]]:
    """A workspace (slug from ``label``) owned by a new user, then one new member per role in ``roles``.

    Each user is labelled ``prefix + role`` (``"owner"`` for the owner); returns the workspace and its users,
    owner first, then in the order of ``roles``.
    """
    owner = await make_user(db, f"{prefix}owner")
    workspace = await make_workspace(db, owner, label)
    users = [owner]
    for role in roles:
        user = await make_user(db, f"{prefix}{role}")
        await add_member(db, workspace, user, role)
        users.append(user)
    return workspace, users


@dataclass
class Team:
    """A workspace with one person in each role (see :func:`workspace_with`)."""

    workspace: Workspace
    owner: User
    admin: User
    member: User
    viewer: User

    ROLES = ("admin", "member", "viewer")  # the members besides the owner, in the order of the fields

    def user(self, role: str) -> User:
        user: User = getattr(self, role)
        return user


async def role_of(db: Database, workspace_id: str, user_id: uuid.UUID) -> str | None:
    async with db.public_session() as session:
        return await session.scalar(
            select(Membership.role).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.public_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


# ------------------------------------------------------------------------------------ changes, as a request


def person(user: User, ip: str = "") -> Actor:
    """``user`` as the audit actor of their own request."""
    return person_actor(user, ip)


@asynccontextmanager
async def changes(db: Database, settings: Settings) -> AsyncIterator[AsyncSession]:
    """A unit of work as a request opens it: the audit entries recorded in it reach the workspace's log (and
    its live feed) once it commits."""
    redis = Redis.from_url(settings.redis_url)
    try:
        async with public_change(db, EventBus(redis)) as session:
            yield session
    finally:
        await redis.aclose()


async def audit(
    db: Database,
    settings: Settings,
    workspace_id: str,
    action: str,
    actor: User | None,
    details: dict[str, Any] | None = None,
    *,
    ip: str = "",
) -> None:
    """One audit entry, recorded and relayed as any change's would be (``actor`` None: Marid itself)."""
    async with changes(db, settings) as session:
        record(session, workspace_id, action, person(actor, ip) if actor else Actor.system(ip=ip), details)


# ---------------------------------------------------------------------------------------- HTTP, as a browser


def random_ip() -> str:
    # Each client gets its own address, so per-IP rate limits of one test never reach another.
    return f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.{secrets.randbelow(250) + 1}"


@contextmanager
def http_client(app: ASGIApp, *, user_agent: str | None = None) -> Iterator[TestClient]:
    """A TestClient like one browser: its own address (see :func:`random_ip`), redirects not followed."""
    headers = {"user-agent": user_agent} if user_agent is not None else None
    with TestClient(app, follow_redirects=False, client=(random_ip(), 50000), headers=headers) as client:
        yield client


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


def post_form(
    client: TestClient, page: str, action: str, data: dict[str, str] | None = None, **headers: str
) -> Response:
    """Open ``page`` to get its CSRF token (as a browser would), then submit ``data`` to ``action``."""
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **(data or {})}, headers=headers or None)


post = post_form


def sign_in(client: TestClient, email: str, password: str = STRONG_PASSWORD) -> Response:
    """Submit the login form, as a browser would; returns the answer (a 303 when it worked)."""
    return post_form(client, "/login", "/login", {"email": email, "password": password})


def log_in(client: TestClient, email: str, password: str = STRONG_PASSWORD) -> None:
    """Sign in through the login form, as a browser would; it must work."""
    response = sign_in(client, email, password)
    assert response.status_code == 303, response.text


# ----------------------------------------------------------------------------------------------- routes


def routes_under(routes: Sequence[BaseRoute], start: str, prefix: str = "") -> Iterator[tuple[str, Route]]:
    """Every route (through mounts) whose full path starts with ``start``, with that full path."""
    for route in routes:
        if isinstance(route, Mount):
            yield from routes_under(list(route.routes), start, prefix + route.path)
        elif isinstance(route, Route) and (prefix + route.path).startswith(start):
            yield prefix + route.path, route
