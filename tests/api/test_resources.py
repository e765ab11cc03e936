"""Each resource of the API does what its page does: same rules, same refusals, same audit entries."""

from __future__ import annotations

import uuid

import pytest

from app.api.principal import ApiPrincipal, Scope, implied
from app.auth.models import UserSession
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.tenants.models import Invitation
from tests.api.helpers import Team, api_client, audit_actions, error_of, make_team, session_cookie
from tests.helpers import count, role_of


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    return await make_team(db, settings, "res")


def key_of(team: Team, kind: str = "personal_key", scope: Scope = Scope.ADMIN, role: str = "owner") -> ApiPrincipal:
    user = team.user(role) if kind == "personal_key" else None
    return ApiPrincipal(kind=kind, user=user, workspace_id=team.workspace.id,  # type: ignore[arg-type]
                        scopes=implied(scope), key_id=uuid.uuid4())  # fmt: skip


def test_me_for_a_session_and_for_a_service_key(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["admin"]) as client:
        body = client.get("/api/v1/me").json()
    assert body["user"]["email"] == team.admin.email
    assert body["auth"] == {"kind": "session", "scopes": ["read", "write", "admin"], "workspace_id": None,
                            "key_id": None, "acts_as": None}  # fmt: skip
    principal = key_of(team, "service_key", Scope.WRITE)
    with api_client(settings, principal=principal) as client:
        body = client.get("/api/v1/me").json()
    assert body["user"] is None
    assert body["auth"]["kind"] == "service_key" and body["auth"]["scopes"] == ["read", "write"]
    assert body["auth"]["acts_as"] == "member"


async def test_workspaces_list_and_get(settings: Settings, db: Database, team: Team) -> None:
    other = await make_team(db, settings, "res-other")
    with api_client(settings, team.cookies["viewer"]) as client:
        listed = client.get("/api/v1/workspaces").json()["data"]
        assert [(w["slug"], w["role"]) for w in listed] == [(team.workspace.slug, "viewer")]
        one = client.get(f"/api/v1/workspaces/{team.workspace.slug}").json()
        assert one["id"] == team.workspace.id and one["name"] == team.workspace.name
    # A key sees its own workspace only. Its owner's role is said as it is; what the key may do is "acts_as"
    # (a read key of an admin acts as a viewer; issue 10: it no longer reports the admin as "viewer").
    with api_client(settings, principal=key_of(team, scope=Scope.READ, role="admin")) as client:
        listed = client.get("/api/v1/workspaces").json()["data"]
        assert [(w["slug"], w["role"], w["acts_as"]) for w in listed] == [(team.workspace.slug, "admin", "viewer")]
        assert client.get(f"/api/v1/workspaces/{other.workspace.slug}").status_code == 404


async def test_workspace_settings_follow_the_settings_page(settings: Settings, db: Database, team: Team) -> None:
    url = f"/api/v1/workspaces/{team.workspace.slug}"
    with api_client(settings, team.cookies["admin"]) as client:
        response = client.patch(url, json={"name": "  Renamed   team "})
        assert response.status_code == 200, response.text
        assert response.json()["name"] == "Renamed team"
        response = client.patch(url, json={"require_2fa": True})
        assert response.status_code == 422
        assert "Turn on two-factor authentication for your own account first" in error_of(response)["message"]
    with api_client(settings, team.cookies["member"]) as client:
        assert error_of(client.patch(url, json={"name": "Nope"}))["code"] == "forbidden"
    with api_client(settings, principal=key_of(team, scope=Scope.WRITE)) as client:
        assert error_of(client.patch(url, json={"name": "Nope"}))["code"] == "insufficient_scope"
    with api_client(settings, principal=key_of(team, "service_key")) as client:
        assert error_of(client.patch(url, json={"name": "Nope"}))["code"] == "user_required"
    actions = await audit_actions(db, team.workspace.id)
    assert actions[-1] == ("settings.changed", {"name": {"from": team.workspace.name, "to": "Renamed team"}})
    assert [a for a, _ in actions].count("settings.changed") == 1


async def test_member_roles_and_removal_follow_the_members_page(settings: Settings, db: Database, team: Team) -> None:
    base = f"/api/v1/workspaces/{team.workspace.slug}/members"
    with api_client(settings, team.cookies["member"]) as client:
        assert client.get(base).status_code == 200
        assert error_of(client.patch(f"{base}/{team.viewer.id}", json={"role": "admin"}))["code"] == "forbidden"
    with api_client(settings, team.cookies["admin"]) as client:
        response = client.patch(f"{base}/{team.member.id}", json={"role": "viewer"})
        assert response.status_code == 200, response.text
        assert response.json()["role"] == "viewer" and response.json()["email"] == team.member.email
        response = client.patch(f"{base}/{team.owner.id}", json={"role": "viewer"})
        assert response.status_code == 422
        assert error_of(response)["message"] == "Only the owner can change the owner's role, by transferring ownership."
        assert client.delete(f"{base}/{team.viewer.id}").status_code == 204
        assert client.delete(f"{base}/{team.viewer.id}").status_code == 404
        assert client.delete(f"{base}/{uuid.uuid4()}").status_code == 404
    assert await role_of(db, team.workspace.id, team.member.id) == "viewer"
    assert await role_of(db, team.workspace.id, team.viewer.id) is None
    actions = await audit_actions(db, team.workspace.id)
    # The entries name whom it happened to (issue 10: the feed says "Ada changed Bob's role...").
    changed = {"member_id": str(team.member.id), "member": team.member.display_name, "email": team.member.email,
               "from": "member", "to": "viewer"}  # fmt: skip
    removed = {"member_id": str(team.viewer.id), "member": team.viewer.display_name, "email": team.viewer.email,
               "role": "viewer"}  # fmt: skip
    assert actions[-2:] == [("member.role_changed", changed), ("member.removed", removed)]


async def test_invitations_follow_the_members_page(settings: Settings, db: Database, team: Team) -> None:
    base = f"/api/v1/workspaces/{team.workspace.slug}/invitations"
    with api_client(settings, team.cookies["member"]) as client:
        assert client.get(base).status_code == 403
    with api_client(settings, team.cookies["admin"]) as client:
        response = client.post(base, json={"emails": ["New.Person@Example.com", "other@example.com"], "role": "viewer"})
        assert response.status_code == 201, response.text
        created = response.json()["data"]
        assert sorted(i["email"] for i in created) == ["new.person@example.com", "other@example.com"]
        listed = client.get(base).json()["data"]
        assert {i["id"] for i in listed} == {i["id"] for i in created}
        response = client.post(base, json={"emails": [team.member.email]})
        assert response.status_code == 422
        assert error_of(response)["message"].startswith("Already a member")
        first = created[0]["id"]
        assert client.delete(f"{base}/{first}").status_code == 204
        response = client.delete(f"{base}/{first}")
        assert response.status_code == 422
        assert error_of(response)["message"] == "That invitation was already revoked."
        assert client.delete(f"{base}/{uuid.uuid4()}").status_code == 404
    assert await count(db, OutboxMessage, OutboxMessage.workspace_id == team.workspace.id) == 2
    pending = (Invitation.workspace_id == team.workspace.id, Invitation.revoked_at.is_(None))
    assert await count(db, Invitation, *pending) == 1
    actions = [action for action, _ in await audit_actions(db, team.workspace.id)]
    assert actions[-3:] == ["member.invited", "member.invited", "invitation.revoked"]


async def test_sessions_follow_the_sessions_page(settings: Settings, db: Database, team: Team) -> None:
    other = await session_cookie(db, settings, team.member, user_agent="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0")
    with api_client(settings, other) as other_browser:
        assert other_browser.get("/api/v1/me").status_code == 200
        with api_client(settings, team.cookies["member"]) as client:
            sessions = client.get("/api/v1/me/sessions").json()["data"]
            assert len(sessions) == 2 and sum(s["current"] for s in sessions) == 1
            firefox = next(s for s in sessions if s["device"] == "Firefox 128 on Linux")
            assert client.delete(f"/api/v1/me/sessions/{firefox['id']}").status_code == 204
            assert client.delete(f"/api/v1/me/sessions/{firefox['id']}").status_code == 404
        assert other_browser.get("/api/v1/me").status_code == 401
        # The sessions page's account event, in the member's own log (never the workspace's audit log).
        with api_client(settings, team.cookies["member"]) as client:
            events = client.get("/api/v1/me/account-events").json()["data"]
    assert (events[0]["action"], events[0]["details"]) == (
        "auth.session_revoked",
        {"session": firefox["id"], "own": False},
    )
    assert events[0]["sentence"] == "Signed a session out"
    assert "auth.session_revoked" not in [action for action, _ in await audit_actions(db, team.workspace.id)]


async def test_ending_your_own_session_signs_you_out(settings: Settings, db: Database, team: Team) -> None:
    cookie = await session_cookie(db, settings, team.viewer)
    with api_client(settings, cookie) as client:
        mine = next(s for s in client.get("/api/v1/me/sessions").json()["data"] if s["current"])
        response = client.delete(f"/api/v1/me/sessions/{mine['id']}")
        assert response.status_code == 204
        assert f"{settings.session_cookie}=" in response.headers["set-cookie"]
    with api_client(settings, cookie) as client:
        assert client.get("/api/v1/me").status_code == 401
    async with db.public_session() as session:
        assert await session.get(UserSession, uuid.UUID(mine["id"])) is None


def test_keys_read_sessions_but_never_end_them(settings: Settings, team: Team) -> None:
    with api_client(settings, principal=key_of(team, scope=Scope.READ)) as client:
        sessions = client.get("/api/v1/me/sessions").json()["data"]
        assert sessions and not any(s["current"] for s in sessions)
        response = client.delete(f"/api/v1/me/sessions/{sessions[0]['id']}")
        assert error_of(response)["code"] == "session_required"
    with api_client(settings, principal=key_of(team, "service_key")) as client:
        assert error_of(client.get("/api/v1/me/sessions"))["code"] == "user_required"


async def test_the_audit_log_as_the_page_shows_it(settings: Settings, team: Team) -> None:
    url = f"/api/v1/workspaces/{team.workspace.slug}/audit"
    with api_client(settings, team.cookies["viewer"]) as client:
        assert client.get(url).status_code == 403
    with api_client(settings, team.cookies["admin"]) as client:
        events = client.get(url, params={"action": "invitation.accepted"}).json()["data"]
    assert [e["details"]["role"] for e in events] == ["viewer", "member", "admin"]
    assert events[0]["action_label"] == "Accepted an invitation"
    assert events[0]["summary"] == "role: viewer"
    assert events[0]["actor"] == f"{team.viewer.display_name} <{team.viewer.email}>"


async def test_api_keys_made_through_the_api_work_as_bearer_keys(settings: Settings, db: Database, team: Team) -> None:
    base = f"/api/v1/workspaces/{team.workspace.slug}/api-keys"
    with api_client(settings, team.cookies["member"]) as client:
        response = client.post(base, json={"name": "ci", "scope": "admin"})
        assert response.status_code == 403
        assert error_of(response)["message"] == "As member you can give your keys at most write access."
        response = client.post(base, json={"name": "ci", "scope": "read"})
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["kind"] == "personal" and created["status"] == "active" and created["token"]
        listed = client.get(base).json()["data"]
        assert [k["id"] for k in listed] == [created["id"]] and "token" not in listed[0]
    bearer = {"Authorization": f"Bearer {created['token']}"}
    with api_client(settings, csrf=False) as client:
        me = client.get("/api/v1/me", headers=bearer).json()
        assert me["auth"] == {"kind": "personal_key", "scopes": ["read"], "workspace_id": team.workspace.id,
                              "key_id": created["id"], "acts_as": "viewer"}  # fmt: skip
        # No CSRF token needed with a key, but a read key cannot change anything.
        response = client.patch(f"/api/v1/workspaces/{team.workspace.slug}", headers=bearer, json={"name": "x"})
        assert error_of(response)["code"] == "insufficient_scope"
    with api_client(settings, team.cookies["member"]) as client:
        assert client.delete(f"{base}/{created['id']}").status_code == 204
    with api_client(settings, csrf=False) as client:
        assert error_of(client.get("/api/v1/me", headers=bearer))["code"] == "revoked_api_key"
    actions = [action for action, _ in await audit_actions(db, team.workspace.id)]
    assert actions[-2:] == ["apikey.created", "apikey.revoked"]
