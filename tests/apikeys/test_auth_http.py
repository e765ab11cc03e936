"""Bearer keys over HTTP, through every middleware, on real operations of the JSON API: scopes, refusals, the
owner's role, rate limit, last use.

``GET /api/v1/me`` says who the key acts as (a read operation outside any workspace); revoking an API key that
does not exist (``DELETE /api/v1/workspaces/{slug}/api-keys/<random id>``) is the write: a key that may write
gets past every check to the 404 of the missing key, one that may not is stopped at its scope.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import delete, func, select, update
from starlette.testclient import TestClient

from app.apikeys import auth as key_auth
from app.apikeys import format as key_format
from app.apikeys.format import KeyKind
from app.apikeys.models import ApiKey
from app.apikeys.service import Actor, revoke_key
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.tenants.models import Membership, Workspace
from app.tenants.permissions import Role
from tests.apikeys.helpers import bearer, load_key, make_key, set_key
from tests.helpers import Team, add_member, log_in, workspace_with

ME = "/api/v1/me"


@pytest.fixture
async def team(db: Database) -> Team:
    workspace, (owner, admin, member, viewer) = await workspace_with(db, "keys", Team.ROLES)
    return Team(workspace, owner, admin, member, viewer)


def write(team: Team) -> str:
    """A write operation (scope ``write``) whose answer, once every check passed, is 404: no such key."""
    return f"/api/v1/workspaces/{team.workspace.slug}/api-keys/{uuid.uuid4()}"


def auth_of(client: TestClient, token: str) -> dict[str, object]:
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 200, response.text
    auth: dict[str, object] = response.json()["auth"]
    return auth


def refused(response: object, status: int, code: str) -> dict[str, object]:
    assert response.status_code == status, response.text  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    assert body["error"]["code"] == code, body
    assert set(body["error"]) == {"code", "message", "details"}
    if code in ("invalid_api_key", "expired_api_key", "revoked_api_key"):
        assert 'error="invalid_token"' in response.headers["www-authenticate"]  # type: ignore[attr-defined]
    return body["error"]  # type: ignore[no-any-return]


async def test_a_read_key_reads_but_cannot_write(client: TestClient, db: Database, team: Team) -> None:
    key, token = await make_key(db, team.workspace, team.member, "member", scope="read")
    response = client.get(ME, headers=bearer(token))
    assert response.status_code == 200, response.text
    assert response.json()["user"]["id"] == str(team.member.id)
    assert response.json()["auth"] == {
        "kind": "personal_key",
        "workspace_id": team.workspace.id,
        "scopes": ["read"],
        "key_id": str(key.id),
        "acts_as": "viewer",  # what the key may do, said apart from its owner's role (issue 10)
    }
    error = refused(client.delete(write(team), headers=bearer(token)), 403, "insufficient_scope")
    assert error["details"] == {"required": "write", "granted": ["read"]}
    _, writer = await make_key(db, team.workspace, team.member, "member", scope="write")
    assert auth_of(client, writer)["scopes"] == ["read", "write"]
    refused(client.delete(write(team), headers=bearer(writer)), 404, "not_found")  # past the scope check


async def test_a_service_key_acts_as_itself(client: TestClient, db: Database, team: Team) -> None:
    key, token = await make_key(db, team.workspace, team.admin, "admin", kind="service", scope="admin")
    body = client.get(ME, headers=bearer(token)).json()
    assert body["auth"]["kind"] == "service_key" and body["user"] is None
    assert body["auth"]["scopes"] == ["read", "write", "admin"]
    refused(client.delete(write(team), headers=bearer(token)), 404, "not_found")  # it may write
    # It keeps working when the admin who made it leaves: it is not tied to a person.
    async with db.public_session() as session:
        await session.execute(delete(Membership).where(Membership.user_id == team.admin.id))
    assert client.get(ME, headers=bearer(token)).status_code == 200


async def test_expired_and_revoked_keys_are_refused(client: TestClient, db: Database, team: Team) -> None:
    key, token = await make_key(db, team.workspace, team.owner, "owner", expires_at=now() + timedelta(days=30))
    assert client.get(ME, headers=bearer(token)).status_code == 200
    await set_key(db, key, expires_at=now() - timedelta(seconds=1))
    refused(client.get(ME, headers=bearer(token)), 401, "expired_api_key")

    key, token = await make_key(db, team.workspace, team.owner, "owner", kind="service", scope="write")
    assert client.get(ME, headers=bearer(token)).status_code == 200
    async with db.public_session() as session:
        await revoke_key(session, workspace_id=team.workspace.id, actor=Actor(team.owner.id, Role.OWNER), key_id=key.id)
    refused(client.get(ME, headers=bearer(token)), 401, "revoked_api_key")
    refused(client.delete(write(team), headers=bearer(token)), 401, "revoked_api_key")


async def test_malformed_and_unknown_keys_are_refused(client: TestClient, db: Database, team: Team) -> None:
    _, token = await make_key(db, team.workspace, team.owner, "owner")
    tampered = token[:-7] + ("A" if token[-7] != "A" else "B") + token[-6:]
    for bad in ["", "nonsense", token[:-1], tampered, token.replace("marid_pk_", "marid_sk_")]:
        error = refused(client.get(ME, headers=bearer(bad)), 401, "invalid_api_key")
        assert str(error["message"]).startswith("Malformed API key."), error
    # Well formed, right checksum, but never issued; and a real lookup id with the wrong secret.
    unknown = key_format.generate(KeyKind.PERSONAL)
    head = token[:17] + unknown[17:-6]
    same_prefix = head + key_format.checksum(head)
    for bad in [unknown, same_prefix]:
        assert refused(client.get(ME, headers=bearer(bad)), 401, "invalid_api_key")["message"] == "Unknown API key."
    # The scheme is case-insensitive, and a key is never read from anywhere but the header.
    assert client.get(ME, headers={"Authorization": f"bearer {token}"}).status_code == 200
    refused(client.get(ME, params={"access_token": token}), 401, "authentication_required")


async def test_guessing_keys_from_one_address_is_slowed_down(
    client: TestClient, db: Database, team: Team, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(key_auth, "FAILURES_PER_MINUTE", 3)
    _, token = await make_key(db, team.workspace, team.owner, "owner")
    for _ in range(3):
        refused(client.get(ME, headers=bearer(key_format.generate(KeyKind.SERVICE))), 401, "invalid_api_key")
    response = client.get(ME, headers=bearer(token))
    refused(response, 429, "rate_limited")
    assert int(response.headers["retry-after"]) >= 1


async def test_a_personal_key_dies_with_its_owners_membership(client: TestClient, db: Database, team: Team) -> None:
    _, token = await make_key(db, team.workspace, team.member, "member", scope="write")
    assert client.get(ME, headers=bearer(token)).status_code == 200
    async with db.public_session() as session:
        await session.execute(delete(Membership).where(Membership.user_id == team.member.id))
    error = refused(client.get(ME, headers=bearer(token)), 401, "invalid_api_key")
    assert "no longer a member" in str(error["message"])
    # Invited back later: the old key stays dead (it belonged to the membership that ended).
    await add_member(db, team.workspace, team.member, "member")
    refused(client.get(ME, headers=bearer(token)), 401, "invalid_api_key")


async def test_a_personal_key_never_acts_above_its_owners_current_role(
    client: TestClient, db: Database, team: Team
) -> None:
    _, token = await make_key(db, team.workspace, team.admin, "admin", scope="admin")
    assert auth_of(client, token)["scopes"] == ["read", "write", "admin"]
    async with db.public_session() as session:
        await session.execute(
            update(Membership).where(Membership.user_id == team.admin.id).values(role=Role.VIEWER.value)
        )
    # Now a viewer: the admin-scoped key reads and nothing more.
    assert auth_of(client, token)["scopes"] == ["read"]
    refused(client.delete(write(team), headers=bearer(token)), 403, "insufficient_scope")
    slug = team.workspace.slug
    assert client.get(f"/api/v1/workspaces/{slug}", headers=bearer(token)).json()["role"] == "viewer"
    renamed = client.patch(f"/api/v1/workspaces/{slug}", headers=bearer(token), json={"name": "Probed"})
    refused(renamed, 403, "insufficient_scope")


async def test_a_workspace_requiring_2fa_refuses_keys_of_members_without_it(
    client: TestClient, db: Database, team: Team
) -> None:
    _, personal = await make_key(db, team.workspace, team.member, "member", scope="read")
    _, service_key = await make_key(db, team.workspace, team.owner, "owner", kind="service", scope="read")
    async with db.public_session() as session:
        await session.execute(update(Workspace).where(Workspace.id == team.workspace.id).values(require_2fa=True))
    assert "two-factor" in str(refused(client.get(ME, headers=bearer(personal)), 401, "invalid_api_key")["message"])
    assert client.get(ME, headers=bearer(service_key)).status_code == 200


async def test_each_key_is_rate_limited(client: TestClient, db: Database, team: Team) -> None:
    client.app.state.settings = client.app.state.settings.model_copy(update={"api_key_requests_per_minute": 3})  # type: ignore[attr-defined]
    _, token = await make_key(db, team.workspace, team.owner, "owner")
    _, other = await make_key(db, team.workspace, team.owner, "owner")
    for remaining in (2, 1, 0):
        response = client.get(ME, headers=bearer(token))
        assert response.status_code == 200
        assert response.headers["x-ratelimit-remaining"] == str(remaining)
    response = client.get(ME, headers=bearer(token))
    error = refused(response, 429, "rate_limited")
    assert 1 <= int(response.headers["retry-after"]) <= 20 and error["details"] == {
        "retry_after": int(response.headers["retry-after"])
    }
    # Per key: another key of the same owner is not affected.
    assert client.get(ME, headers=bearer(other)).status_code == 200


async def test_last_use_is_recorded_at_most_once_a_minute(db: Database, settings: Settings, team: Team) -> None:
    key, token = await make_key(db, team.workspace, team.owner, "owner")
    assert (await load_key(db, key)).last_used_at is None
    with TestClient(create_app(settings), client=("198.51.100.7", 50000)) as client:
        assert client.get(ME, headers=bearer(token)).status_code == 200
        first = await load_key(db, key)
        assert first.last_used_at is not None and first.last_used_ip == "198.51.100.7"
        assert now() - first.last_used_at < timedelta(seconds=30)
        assert client.get(ME, headers=bearer(token)).status_code == 200
        assert (await load_key(db, key)).last_used_at == first.last_used_at
        await set_key(db, key, last_used_at=now() - timedelta(minutes=2))
        assert client.get(ME, headers=bearer(token)).status_code == 200
        assert now() - (await load_key(db, key)).last_used_at < timedelta(seconds=30)  # type: ignore[operator]


async def test_bearer_on_a_page_is_refused_and_never_uses_the_cookie(
    client: TestClient, db: Database, team: Team
) -> None:
    _, token = await make_key(db, team.workspace, team.owner, "owner", kind="service", scope="admin")
    log_in(client, team.owner.email)
    slug = team.workspace.slug
    assert client.get(f"/w/{slug}").status_code == 200  # the cookie is good
    for headers in (bearer(token), bearer("nonsense")):
        response = client.get(f"/w/{slug}", headers=headers)
        assert "API keys are accepted only by the API" in str(refused(response, 401, "invalid_api_key")["message"])
        assert "<html" not in response.text
    # A Bearer request skips the CSRF check, so a bad key with the cookie must change nothing.
    async with db.public_session() as session:
        before = await session.scalar(select(func.count()).select_from(ApiKey))
    response = client.post(f"/w/{slug}/api-keys", headers=bearer("nonsense"), data={"name": "sneaky", "scope": "admin"})
    refused(response, 401, "invalid_api_key")
    async with db.public_session() as session:
        assert await session.scalar(select(func.count()).select_from(ApiKey)) == before
    # Nor does a bad key on the API fall back to the session, which the same operation accepts without one.
    refused(client.get(ME, headers=bearer("nonsense")), 401, "invalid_api_key")
    assert client.get(ME).json()["auth"]["kind"] == "session"
