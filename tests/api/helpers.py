"""Helpers for the JSON API tests: a workspace with people in every role, signed-in sessions made directly in
the database, and TestClients that call the API with a session cookie (plus CSRF) or a given principal."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from starlette.testclient import TestClient
from starlette.types import ASGIApp, Receive, Scope, Send

from app.api.principal import ApiPrincipal
from app.audit.models import AuditEvent
from app.auth.middleware import session_cookie_value
from app.auth.models import User
from app.auth.sessions import start_session
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.security.tokens import new_token
from tests import helpers as shared
from tests.helpers import audit, http_client, workspace_with


@dataclass
class Team(shared.Team):
    cookies: dict[str, str] = field(default_factory=dict)  # a session cookie per role


async def session_cookie(db: Database, settings: Settings, user: User, user_agent: str = "testclient") -> str:
    async with db.public_session() as session:
        token, _ = await start_session(session, settings, user, ip="127.0.0.1", user_agent=user_agent)
    return session_cookie_value(settings, token)


async def make_team(db: Database, settings: Settings, label: str = "api") -> Team:
    """A workspace with an owner, an admin, a member and a viewer (each signed in once), an invitation and a
    few audit entries."""
    workspace, (owner, admin, member, viewer) = await workspace_with(db, label, Team.ROLES, prefix=f"{label}-")
    team = Team(workspace, owner, admin, member, viewer)
    for role in ("owner", "admin", "member", "viewer"):
        team.cookies[role] = await session_cookie(db, settings, team.user(role))
    await audit(db, settings, workspace.id, "workspace.created", owner, {"name": workspace.name})
    for role in ("admin", "member", "viewer"):
        await audit(db, settings, workspace.id, "invitation.accepted", team.user(role), {"role": role})
    return team


async def audit_actions(db: Database, workspace_id: str) -> list[tuple[str, dict[str, Any]]]:
    async with db.tenant_session(workspace_id) as session:
        rows = await session.scalars(select(AuditEvent).order_by(AuditEvent.id))
        return [(row.action, row.details) for row in rows]


class WithPrincipal:
    """Wraps the app so every request arrives authenticated as ``principal``, as the API-keys middleware
    would leave it (no Authorization header, so nothing else reads the request as a key)."""

    def __init__(self, app: ASGIApp, principal: ApiPrincipal) -> None:
        self.app = app
        self.principal = principal

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope.setdefault("state", {})["api_principal"] = self.principal
        await self.app(scope, receive, send)


@contextmanager
def api_client(
    settings: Settings, cookie: str | None = None, *, principal: ApiPrincipal | None = None, csrf: bool = True
) -> Iterator[TestClient]:
    """A client of the API: signed in with ``cookie`` (and sending the CSRF header unless ``csrf`` is False),
    or authenticated as ``principal``."""
    app: ASGIApp = create_app(settings)
    if principal is not None:
        app = WithPrincipal(app, principal)
    with http_client(app) as client:
        token = new_token()
        client.cookies.set(settings.csrf_cookie, token)
        if csrf:
            client.headers["X-CSRF-Token"] = token
        if cookie is not None:
            client.cookies.set(settings.session_cookie, cookie)
        yield client


def error_of(response: Any) -> dict[str, Any]:
    """The error object of a JSON error answer; fails unless the body has exactly the API's error shape."""
    assert response.headers["content-type"].startswith("application/json"), response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    assert isinstance(body["error"]["code"], str) and body["error"]["message"], body
    assert isinstance(body["error"]["details"], dict), body
    error: dict[str, Any] = body["error"]
    return error
