"""The API keys page over HTTP: who may create and revoke which keys, the key shown once, clear refusals."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.apikeys.models import ApiKey
from app.audit.models import AuditEvent
from app.auth.models import User
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.tenants.models import Workspace
from tests.apikeys.helpers import bearer, load_key, make_key
from tests.helpers import csrf_of, log_in, workspace_with

TOKEN = re.compile(r"marid_[ps]k_[0-9A-Za-z]{38}")


@dataclass
class Team:
    workspace: Workspace
    owner: User
    member: User
    viewer: User
    url: str


@pytest.fixture
async def team(db: Database) -> Team:
    workspace, (owner, member, viewer) = await workspace_with(db, "keypage", ["member", "viewer"])
    return Team(workspace, owner, member, viewer, f"/w/{workspace.slug}/api-keys")


def form_of(client: TestClient, url: str) -> dict[str, str]:
    page = client.get(url)
    assert page.status_code == 200
    form_id = re.search(r'name="form_id" value="([^"]+)"', page.text)
    assert form_id
    return {"csrf_token": csrf_of(page.text), "form_id": form_id.group(1)}


def create(client: TestClient, url: str, **fields: str) -> object:
    data = {"name": "CI", "kind": "personal", "scope": "read", "expires": "90", **fields}
    return client.post(url, data={**form_of(client, url), **data})


async def keys_of(db: Database, workspace: Workspace) -> list[ApiKey]:
    async with db.public_session() as session:
        return list(await session.scalars(select(ApiKey).where(ApiKey.workspace_id == workspace.id)))


async def actions(db: Database, workspace: Workspace) -> list[tuple[str, dict[str, object]]]:
    async with db.tenant_session(workspace.id) as session:
        rows = await session.scalars(
            select(AuditEvent).where(AuditEvent.action.like("apikey.%")).order_by(AuditEvent.id)
        )
        return [(event.action, event.details) for event in rows]


async def test_a_key_is_shown_once_then_only_its_prefix(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    response = create(client, team.url, name="Deploy bot", scope="write", expires="30")
    assert response.status_code == 201, response.text  # type: ignore[attr-defined]
    token = TOKEN.search(response.text).group(0)  # type: ignore[attr-defined, union-attr]
    assert token.startswith("marid_pk_") and "only time" in response.text  # type: ignore[attr-defined]
    assert response.headers["cache-control"] == "no-store"  # type: ignore[attr-defined]
    (key,) = await keys_of(db, team.workspace)
    assert (key.name, key.kind, key.scope, key.user_id, key.created_by) == (
        "Deploy bot",
        "personal",
        "write",
        team.member.id,
        team.member.id,
    )
    assert key.expires_at is not None and abs(key.expires_at - now() - timedelta(days=30)) < timedelta(minutes=1)
    listing = client.get(team.url).text
    assert token not in listing and token[9:20] not in listing and f"marid_pk_{key.lookup_id}…" in listing
    # The key works on the API, and the audit log names it by its prefix only.
    assert client.get("/api/v1/_nothing_here", headers=bearer(token)).status_code == 404
    assert (await load_key(db, key)).last_used_at is not None
    ((action, details),) = await actions(db, team.workspace)
    assert action == "apikey.created" and details["lookup"] == f"marid_pk_{key.lookup_id}…"
    assert details["scopes"] == "write" and details["kind"] == "personal" and token[9:] not in str(details)


async def test_reposting_the_same_form_does_not_make_a_second_key(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.owner.email)
    form = {**form_of(client, team.url), "name": "Once", "kind": "service", "scope": "admin", "expires": "never"}
    assert client.post(team.url, data=form).status_code == 201
    again = client.post(team.url, data=form)
    assert again.status_code == 409 and "already submitted" in again.text
    assert len(await keys_of(db, team.workspace)) == 1


@pytest.mark.parametrize(
    ("who", "fields", "message"),
    [
        ("viewer", {"scope": "write"}, "As viewer you can give your keys at most read access."),
        ("member", {"scope": "admin"}, "As member you can give your keys at most write access."),
        ("member", {"kind": "service", "scope": "read"}, "Only owners and admins can create service keys."),
        ("owner", {"name": "   "}, "Give the key a name"),
        ("owner", {"name": "x" * 81}, "at most 80 characters"),
        ("owner", {"scope": "root"}, "Choose read, write or admin access."),
        ("owner", {"kind": "robot"}, "Choose a personal or a service key."),
        ("owner", {"expires": "7"}, "Choose when the key expires."),
        ("owner", {"expires": "custom", "expires_on": "soon"}, "Enter the expiry date as YYYY-MM-DD."),
        ("owner", {"expires": "custom", "expires_on": date.today().isoformat()}, "must be in the future"),
        ("owner", {"expires": "custom", "expires_on": "2999-01-01"}, "at most five years"),
    ],
)
async def test_bad_requests_are_explained_and_change_nothing(
    client: TestClient, db: Database, team: Team, who: str, fields: dict[str, str], message: str
) -> None:
    log_in(client, getattr(team, who).email)
    response = create(client, team.url, **fields)
    assert response.status_code in (403, 422), response.text  # type: ignore[attr-defined]
    assert message in response.text.replace("&#39;", "'")  # type: ignore[attr-defined]
    assert await keys_of(db, team.workspace) == []
    assert await actions(db, team.workspace) == []


async def test_a_viewer_makes_a_read_key_and_a_custom_expiry_is_kept(
    client: TestClient, db: Database, team: Team
) -> None:
    log_in(client, team.viewer.email)
    page = client.get(team.url).text
    assert 'value="write"' not in page and 'value="service"' not in page and "Service keys" not in page
    day = (date.today() + timedelta(days=10)).isoformat()
    assert create(client, team.url, expires="custom", expires_on=day).status_code == 201  # type: ignore[attr-defined]
    (key,) = await keys_of(db, team.workspace)
    assert key.scope == "read" and key.expires_at is not None and key.expires_at.date().isoformat() == day


async def test_who_may_revoke_which_key(client: TestClient, db: Database, settings: Settings, team: Team) -> None:
    # Made through the service, which writes each key's audit entry with it.
    mine, _ = await make_key(db, team.workspace, team.member, "member", scope="write", name="mine", settings=settings)
    theirs, _ = await make_key(db, team.workspace, team.viewer, "viewer", name="theirs", settings=settings)
    service_key, _ = await make_key(
        db, team.workspace, team.owner, "owner", kind="service", name="svc", settings=settings
    )
    log_in(client, team.member.email)
    page = client.get(team.url).text
    assert "mine" in page and "theirs" not in page and "svc" not in page
    token = csrf_of(page)
    # Someone else's key, a service key, a malformed id: "does not exist", and nothing changes.
    for key_id in (theirs.id, service_key.id, "not-a-uuid"):
        response = client.post(f"{team.url}/{key_id}/revoke", data={"csrf_token": token})
        assert response.status_code == 404 and "That API key does not exist." in response.text
    for key in (theirs, service_key):
        assert (await load_key(db, key)).revoked_at is None
    # Their own key: revoked at once, and revoking twice is explained.
    assert client.post(f"{team.url}/{mine.id}/revoke", data={"csrf_token": token}).status_code == 303
    revoked = await load_key(db, mine)
    assert revoked.revoked_at is not None and revoked.revoked_by == team.member.id
    again = client.post(f"{team.url}/{mine.id}/revoke", data={"csrf_token": token})
    assert again.status_code == 422 and "already revoked" in again.text
    # The owner sees every key and may revoke any of them.
    client.cookies.clear()
    log_in(client, team.owner.email)
    page = client.get(team.url).text
    assert all(name in page for name in ("mine", "theirs", "svc")) and "Members' personal keys" in page
    token = csrf_of(page)
    for key in (theirs, service_key):
        assert client.post(f"{team.url}/{key.id}/revoke", data={"csrf_token": token}).status_code == 303
        assert (await load_key(db, key)).revoked_by == team.owner.id
    assert [action for action, _ in await actions(db, team.workspace)] == ["apikey.created"] * 3 + [
        "apikey.revoked"
    ] * 3


async def test_the_sidebar_links_to_the_page(client: TestClient, team: Team) -> None:
    log_in(client, team.viewer.email)
    page = client.get(f"/w/{team.workspace.slug}").text
    assert f'href="{team.url}"' in page
