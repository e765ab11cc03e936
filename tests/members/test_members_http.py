"""Members, invitations and the invitation link over HTTP: who may do what, clear refusals, nothing changed."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.audit.models import AuditEvent
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.tenants.models import Invitation, Membership, Workspace
from tests.helpers import (
    count,
    log_in,
    make_user,
    make_workspace,
    post,
    role_of,
    workspace_with,
)


@dataclass
class Team:
    workspace: Workspace
    owner: User
    admin: User
    viewer: User
    members_url: str


@pytest.fixture
async def team(db: Database) -> Team:
    workspace, (owner, admin, viewer) = await workspace_with(db, "http", ["admin", "viewer"])
    return Team(workspace, owner, admin, viewer, f"/w/{workspace.slug}/members")


async def state(db: Database, workspace: Workspace) -> tuple[object, ...]:
    """Everything a members action could change."""
    async with db.public_session() as session:
        rows = sorted(
            (str(u), r)
            for u, r in await session.execute(
                select(Membership.user_id, Membership.role).where(Membership.workspace_id == workspace.id)
            )
        )
        fresh = await session.get(Workspace, workspace.id, populate_existing=True)
        assert fresh is not None
        settings = (fresh.name, fresh.require_2fa)
    return rows, await count(db, Invitation), await count(db, OutboxMessage), settings


async def test_a_viewer_sees_no_controls_and_every_write_is_403(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.viewer.email)
    page = client.get(team.members_url)
    assert page.status_code == 200
    assert "Roles and what they may do" in page.text and team.owner.email in page.text
    assert 'name="emails"' not in page.text and "/role" not in page.text and "/remove" not in page.text
    before = await state(db, team.workspace)
    slug = team.workspace.slug
    for action, data in [
        (f"/w/{slug}/members/invite", {"emails": "x@example.com", "role": "viewer"}),
        (f"/w/{slug}/members/{team.admin.id}/role", {"role": "viewer"}),
        (f"/w/{slug}/members/{team.admin.id}/remove", {}),
        (f"/w/{slug}/invitations/{uuid.uuid4()}/revoke", {}),
        (f"/w/{slug}/settings", {"name": "Hijacked"}),
        (f"/w/{slug}/settings/transfer", {"member": str(team.viewer.id)}),
        (f"/w/{slug}/settings/delete", {"confirm_name": team.workspace.name}),
        (f"/w/{slug}/onboarding/invite", {"emails": "x@example.com"}),
    ]:
        response = post(client, team.members_url, action, data)
        assert response.status_code == 403, action
        assert "does not allow" in response.text
    assert await state(db, team.workspace) == before


async def test_admin_controls_and_refusals(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.admin.email)
    page = client.get(team.members_url)
    assert 'name="emails"' in page.text
    assert f"/members/{team.viewer.id}/role" in page.text
    assert f"/members/{team.owner.id}/role" not in page.text, "no controls on the owner's row"
    outsider = await make_user(db, "outsider")
    elsewhere = await make_workspace(db, outsider, "elsewhere")
    before = await state(db, team.workspace)
    slug = team.workspace.slug
    for action, data, message in [
        (f"/w/{slug}/members/invite", {"emails": "", "role": "member"}, "Enter at least one e-mail address"),
        (f"/w/{slug}/members/invite", {"emails": "nope", "role": "member"}, "Not a valid e-mail address"),
        (f"/w/{slug}/members/invite", {"emails": "a@example.com", "role": "god"}, "Choose a role"),
        (f"/w/{slug}/members/invite", {"emails": team.viewer.email}, "Already a member"),
        (f"/w/{slug}/members/{team.owner.id}/role", {"role": "viewer"}, "Only the owner can change"),
        (f"/w/{slug}/members/{outsider.id}/role", {"role": "viewer"}, "not a member of this workspace"),
        (f"/w/{slug}/members/not-an-id/role", {"role": "viewer"}, "not a member of this workspace"),
        (f"/w/{slug}/members/{outsider.id}/remove", {}, "not a member of this workspace"),
        (f"/w/{slug}/members/{team.owner.id}/remove", {}, "owner cannot be removed"),
        (f"/w/{slug}/invitations/{uuid.uuid4()}/revoke", {}, "does not exist"),
    ]:
        response = post(client, team.members_url, action, data)
        assert response.status_code == 422, (action, response.status_code)
        assert message in response.text.replace("&#39;", "'"), action
    assert await state(db, team.workspace) == before
    # Someone else's workspace does not exist as far as this admin can tell.
    other = post(client, team.members_url, f"/w/{elsewhere.slug}/members/{outsider.id}/role", {"role": "viewer"})
    assert other.status_code == 404
    assert await role_of(db, elsewhere.id, outsider.id) == "owner"


async def test_invite_change_role_remove_with_audit(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.admin.email)
    response = post(
        client, team.members_url, team.members_url + "/invite", {"emails": "Kay@Example.com\nlee@example.com"}
    )
    assert response.status_code == 303
    async with db.public_session() as session:
        emails = set(
            await session.scalars(select(Invitation.email).where(Invitation.workspace_id == team.workspace.id))
        )
    assert emails == {"kay@example.com", "lee@example.com"}
    page = client.get(team.members_url)
    assert "2 invitations sent." in page.text, "the toast"
    assert 'data-invitation="kay@example.com"' in page.text

    viewer_url = f"/w/{team.workspace.slug}/members/{team.viewer.id}"
    assert post(client, team.members_url, viewer_url + "/role", {"role": "member"}).status_code == 303
    assert await role_of(db, team.workspace.id, team.viewer.id) == "member"
    assert post(client, team.members_url, viewer_url + "/remove").status_code == 303
    assert await role_of(db, team.workspace.id, team.viewer.id) is None

    async with db.tenant_session(team.workspace.id) as session:
        events = {e.action: e for e in await session.scalars(select(AuditEvent).order_by(AuditEvent.id))}
    assert events["member.invited"].actor_id == str(team.admin.id)
    # The feed names whom it happened to (issue 10): the member's name is recorded with their address.
    assert events["member.role_changed"].details == {
        "member_id": str(team.viewer.id), "member": team.viewer.display_name, "email": team.viewer.email,
        "from": "viewer", "to": "member",
    }  # fmt: skip
    assert events["member.removed"].details["email"] == team.viewer.email
    assert events["member.removed"].ip


async def test_invitations_are_rate_limited_per_inviter(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.owner.email)
    invite = team.members_url + "/invite"

    def batch(n: int, start: int) -> dict[str, str]:
        return {"emails": "\n".join(f"p{i}@example.com" for i in range(start, start + n))}

    for start in (0, 20):
        assert post(client, team.members_url, invite, batch(20, start)).status_code == 303
    before = await state(db, team.workspace)
    refused = post(client, team.members_url, invite, batch(11, 40))
    assert refused.status_code == 429 and "10 more invitations this hour" in refused.text
    assert await state(db, team.workspace) == before


async def test_invitation_link_flow(client: TestClient, db: Database, settings: Settings, team: Team) -> None:
    invitee = await make_user(db, "invitee")
    log_in(client, team.admin.email)
    post(client, team.members_url, team.members_url + "/invite", {"emails": invitee.email, "role": "viewer"})
    async with db.public_session() as session:
        body = await session.scalar(select(OutboxMessage.body_text).where(OutboxMessage.to_address == invitee.email))
    assert body is not None
    link = re.search(r"/invite/[A-Za-z0-9_-]+", body)
    assert link
    path = link.group(0)

    client.cookies.clear()
    # The link without its mailed proof (as "Copy link" gives it): both ways in, a new account first.
    page = client.get(path)
    assert page.status_code == 200
    assert team.workspace.name in page.text and "Create account to accept" in page.text
    assert "Sign in to accept" in page.text
    assert f'href="/login?next=%2Finvite%2F{path.removeprefix("/invite/")}"' in page.text
    # The mailed link (its ?m= proves the mailbox): the invitee has an account, so "Sign in", address filled in.
    mailed = re.search(r"/invite/\S+", body)
    assert mailed
    page = client.get(mailed.group(0))
    assert "Sign in to accept" in page.text and "Create account to accept" not in page.text
    assert quote(invitee.email, safe="") in page.text
    anonymous = post(client, "/login", path)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/login?next=")
    assert client.get("/invite/" + "A" * 43).status_code == 404

    # Someone else signed in: refused with a clear message, nothing joins.
    log_in(client, team.owner.email)
    assert "you are signed in as" in client.get(path).text
    wrong = post(client, path, path)
    assert wrong.status_code == 403 and f"This invitation is for {invitee.email}" in wrong.text
    assert await role_of(db, team.workspace.id, team.owner.id) == "owner"

    client.cookies.clear()
    log_in(client, invitee.email)
    accepted = post(client, path, path)
    assert accepted.status_code == 303 and accepted.headers["location"] == f"/w/{team.workspace.slug}"
    assert await role_of(db, team.workspace.id, invitee.id) == "viewer"
    assert client.get(f"/w/{team.workspace.slug}").status_code == 200

    members = await count(db, Membership)
    replay = post(client, path, path)
    assert replay.status_code == 410 and "already used" in replay.text
    assert await count(db, Membership) == members
    async with db.tenant_session(team.workspace.id) as session:
        accepted_event = await session.scalar(select(AuditEvent).where(AuditEvent.action == "invitation.accepted"))
    assert accepted_event is not None and accepted_event.actor_id == str(invitee.id)


async def test_onboarding_invite_step(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.owner.email)
    url = f"/w/{team.workspace.slug}/onboarding/invite"
    page = client.get(url)
    assert "<h1>Invite your team</h1>" in page.text and "Skip for now" in page.text
    assert f'href="/w/{team.workspace.slug}/onboarding/llm"' in page.text
    bad = post(client, url, url, {"emails": "one@example.com, broken", "role": "member"})
    assert bad.status_code == 422 and "Not a valid e-mail address: broken" in bad.text
    assert await count(db, Invitation, Invitation.workspace_id == team.workspace.id) == 0
    good = post(client, url, url, {"emails": "one@example.com, two@example.com", "role": "admin"})
    assert good.status_code == 303 and good.headers["location"] == f"/w/{team.workspace.slug}/onboarding/llm"
    assert await count(db, Invitation, Invitation.workspace_id == team.workspace.id, Invitation.role == "admin") == 2
    client.cookies.clear()
    log_in(client, team.viewer.email)
    assert client.get(url).status_code == 403
