"""Every workspace-scoped route, every method: a member of another workspace gets 404 and nothing changes.

The routes come from the application's own route table, so a new route is covered the day it is added;
and every route under ``/w/`` must be guarded as workspace-scoped, or this test fails.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from httpx2 import Response
from sqlalchemy import MetaData, func, select, text
from starlette.testclient import TestClient

from app.audit.actor import Actor
from app.auth.middleware import session_cookie_value
from app.auth.models import User
from app.auth.sessions import now, start_session
from app.config import Settings
from app.db import Database, TenantBase
from app.main import create_app
from app.models import PublicBase
from app.security.secrets import SecretsService
from app.sso.service import ConnectionSettings, save_connection
from app.tenants.models import Membership, Workspace
from app.workspaces.service import create_workspace
from tests.helpers import routes_under

SAFE = {"GET", "HEAD", "OPTIONS"}


@dataclass
class Party:
    user: User
    workspace: Workspace
    cookie: str


def fill(path: str, owner: Party) -> str:
    """Put the other workspace's real identifiers into every path parameter."""
    values: dict[str, Any] = {
        "slug": owner.workspace.slug,
        "user_id": owner.user.id,
        "member_id": owner.user.id,
    }
    out = path
    for name in [part.split("}")[0].split(":")[0] for part in path.split("{")[1:]]:
        value = values.get(name, uuid.uuid4() if name.endswith("id") else secrets.token_hex(8))
        out = out.replace("{" + name + "}", str(value)).replace("{" + name + ":uuid}", str(value))
        out = out.replace("{" + name + ":str}", str(value)).replace("{" + name + ":int}", "1")
    return out


async def _party(db: Database, settings: Settings, label: str) -> Party:
    async with db.public_session() as session:
        user = User(
            email=f"{label}-{secrets.token_hex(4)}@example.com",
            display_name=label,
            password_hash=None,
            email_verified_at=now(),
        )
        session.add(user)
        await session.flush()
        workspace = await create_workspace(
            session, name=label, slug=f"{label}-{secrets.token_hex(3)}", owner_id=user.id
        )
        token, _ = await start_session(session, settings, user, ip="127.0.0.1", user_agent="matrix")
    return Party(user=user, workspace=workspace, cookie=session_cookie_value(settings, token))


async def snapshot(db: Database, workspace: Workspace) -> dict[str, Any]:
    """Row counts of every table in the workspace's schema and of its rows in the platform tables."""
    counts: dict[str, Any] = {}
    async with db.tenant_session(workspace.id) as session:
        for table in TenantBase.metadata.sorted_tables:
            counts[f"tenant.{table.name}"] = await session.scalar(select(func.count()).select_from(table))
    async with db.public_session() as session:
        metadata: MetaData = PublicBase.metadata
        for table in metadata.sorted_tables:
            if "workspace_id" in table.c:
                counts[f"public.{table.name}"] = await session.scalar(
                    select(func.count()).select_from(table).where(table.c.workspace_id == workspace.id)
                )
        row = await session.execute(text("SELECT * FROM public.workspaces WHERE id = :id"), {"id": workspace.id})
        counts["public.workspaces.row"] = tuple(row.one())
        memberships = await session.execute(
            text("SELECT user_id, role FROM public.memberships WHERE workspace_id = :id ORDER BY user_id"),
            {"id": workspace.id},
        )
        counts["public.memberships.rows"] = [tuple(r) for r in memberships]
    return counts


@pytest.fixture(scope="module")
async def parties(settings: Settings, db: Database) -> tuple[Party, Party]:
    return await _party(db, settings, "intruder"), await _party(db, settings, "victim")


def test_every_route_under_w_is_workspace_scoped(settings: Settings) -> None:
    app = create_app(settings)
    unguarded = [
        path
        for path, route in routes_under(app.routes, "/w/")
        if not getattr(route.endpoint, "workspace_scoped", False)
    ]
    assert unguarded == []


def _cases(settings: Settings) -> list[tuple[str, str]]:
    app = create_app(settings)
    cases = []
    for path, route in routes_under(app.routes, "/w/"):
        for method in sorted(route.methods or {"GET"}):
            if method != "HEAD":
                cases.append((method, path))
    return cases


async def _walk(
    client: TestClient, db: Database, cases: list[tuple[str, str]], target: Party, expect: Callable[[Response], bool]
) -> list[str]:
    """Every case against ``target``'s workspace: the answers that ``expect`` refuses, and any change in it."""
    csrf = client.cookies.get(client.app.state.settings.csrf_cookie)  # type: ignore[attr-defined]
    assert csrf
    failures: list[str] = []
    for method, path in cases:
        before = await snapshot(db, target.workspace)
        url = fill(path, target)
        headers = {} if method in SAFE else {"X-CSRF-Token": csrf}
        response = client.request(method, url, headers=headers, data={"csrf_token": csrf, "role": "viewer"})
        after = await snapshot(db, target.workspace)
        if not expect(response):
            failures.append(f"{method} {path}: {response.status_code} {response.headers.get('location', '')}")
        if before != after:
            failures.append(f"{method} {path}: changed {set(k for k in before if before[k] != after[k])}")
    return failures


def _not_found(response: Response) -> bool:
    return response.status_code == 404


async def test_another_workspace_is_invisible_on_every_route(
    settings: Settings, db: Database, parties: tuple[Party, Party]
) -> None:
    intruder, victim = parties
    cases = _cases(settings)
    assert len(cases) >= 1
    with TestClient(create_app(settings), follow_redirects=False) as client:
        client.cookies.set(settings.session_cookie, intruder.cookie)
        # Their own workspace works: the session is real.
        assert client.get(f"/w/{intruder.workspace.slug}").status_code == 200
        assert await _walk(client, db, cases, victim, _not_found) == []


# -- the same with two workspaces, one of which requires single sign-on --------------------------------------


@dataclass
class SsoParties:
    intruder: Party  # owner of a workspace without SSO
    victim: Party  # owner of a workspace that requires SSO of its members
    both: Party  # a member of both, signed in with a password (``workspace`` is the intruder's)


@pytest.fixture(scope="module")
async def sso_parties(settings: Settings, db: Database, secrets_service: SecretsService) -> SsoParties:
    intruder, victim = await _party(db, settings, "plain"), await _party(db, settings, "ssoonly")
    async with db.public_session() as session:
        await save_connection(
            session,
            settings,
            secrets_service,
            workspace_id=victim.workspace.id,
            values=ConnectionSettings(
                issuer="https://login.example.com",
                client_id="marid",
                client_secret="matrix-secret",
                default_role="member",
                enabled=True,
                enforce_sso=True,
            ),
            actor=Actor.system("test setup"),
        )
        user = User(email=f"both-{secrets.token_hex(4)}@example.com", display_name="both", email_verified_at=now())
        session.add(user)
        await session.flush()
        for workspace in (intruder.workspace, victim.workspace):
            session.add(Membership(workspace_id=workspace.id, user_id=user.id, role="member"))
        token, _ = await start_session(session, settings, user, ip="127.0.0.1", user_agent="matrix")
    both = Party(user=user, workspace=intruder.workspace, cookie=session_cookie_value(settings, token))
    return SsoParties(intruder=intruder, victim=victim, both=both)


async def test_a_workspace_that_requires_sso_is_invisible_to_another_workspace_on_every_route(
    settings: Settings, db: Database, sso_parties: SsoParties
) -> None:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        client.cookies.set(settings.session_cookie, sso_parties.intruder.cookie)
        assert client.get(f"/w/{sso_parties.intruder.workspace.slug}").status_code == 200
        assert await _walk(client, db, _cases(settings), sso_parties.victim, _not_found) == []


async def test_a_member_of_both_uses_the_other_workspace_and_is_sent_to_sso_on_every_route_of_the_sso_one(
    settings: Settings, db: Database, sso_parties: SsoParties
) -> None:
    victim_slug = sso_parties.victim.workspace.slug

    def sent_to_sso(response: Response) -> bool:
        if response.status_code == 204:  # htmx: a full-page redirect
            return response.headers.get("hx-redirect", "").startswith(f"/sso?workspace={victim_slug}&")
        return response.status_code == 303 and response.headers["location"].startswith(f"/sso?workspace={victim_slug}&")

    def usable(response: Response) -> bool:
        # Anything but a detour to single sign-on (or an error): some routes need ids that do not exist (404).
        location = response.headers.get("location", "") + response.headers.get("hx-redirect", "")
        return response.status_code < 500 and not location.startswith("/sso")

    with TestClient(create_app(settings), follow_redirects=False) as client:
        client.cookies.set(settings.session_cookie, sso_parties.both.cookie)
        assert client.get(f"/w/{sso_parties.intruder.workspace.slug}").status_code == 200
        # Without SSO of the victim's workspace: every route of it, every method, sends the member there.
        assert await _walk(client, db, _cases(settings), sso_parties.victim, sent_to_sso) == []
        # The other workspace: every page opens with the password session (the live stream never ends: skip).
        pages = [(m, p) for m, p in _cases(settings) if m == "GET" and not p.endswith("/events")]
        assert await _walk(client, db, pages, sso_parties.both, usable) == []
        assert client.get(f"/w/{sso_parties.intruder.workspace.slug}").status_code == 200


async def test_the_json_api_asks_a_browser_session_for_the_same_step_up(
    settings: Settings, db: Database, sso_parties: SsoParties
) -> None:
    """The API twins of the SSO workspace's pages refuse a password session that owes the step-up; the other
    workspace's API answers the same session."""
    victim, other = sso_parties.victim.workspace.slug, sso_parties.intruder.workspace.slug
    with TestClient(create_app(settings), follow_redirects=False) as client:
        client.cookies.set(settings.session_cookie, sso_parties.both.cookie)
        for path in (f"/api/v1/workspaces/{victim}", f"/api/v1/workspaces/{victim}/members"):
            response = client.get(path)
            assert response.status_code == 403, path
            assert response.json()["error"]["code"] == "sso_required"
        assert client.get(f"/api/v1/workspaces/{other}/members").status_code == 200
