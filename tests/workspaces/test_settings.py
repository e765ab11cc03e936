"""The workspace settings page: rename, the 2FA requirement, transfer, leave and delete, with their refusals."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy import select, text, update
from starlette.testclient import TestClient

from app.audit.models import AuditEvent
from app.auth.models import User
from app.auth.sessions import now
from app.db import Database, schema_for
from app.tenants.models import Workspace
from tests.helpers import log_in, post, role_of, workspace_with


@dataclass
class Team:
    workspace: Workspace
    owner: User
    admin: User
    member: User
    url: str


@pytest.fixture
async def team(db: Database) -> Team:
    workspace, (owner, admin, member) = await workspace_with(db, "settings", ["admin", "member"])
    return Team(workspace, owner, admin, member, f"/w/{workspace.slug}/settings")


async def fresh(db: Database, workspace: Workspace) -> Workspace | None:
    async with db.public_session() as session:
        return await session.get(Workspace, workspace.id, populate_existing=True)


async def events(db: Database, workspace: Workspace) -> list[AuditEvent]:
    async with db.tenant_session(workspace.id) as session:
        return list(await session.scalars(select(AuditEvent).order_by(AuditEvent.id)))


async def test_rename_and_its_refusals(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.admin.email)
    for name, message in [("", "Enter a name"), ("   ", "Enter a name"), ("n" * 121, "120 characters")]:
        response = post(client, team.url, team.url, {"name": name})
        assert response.status_code == 422 and message in response.text
    workspace = await fresh(db, team.workspace)
    assert workspace is not None and workspace.name == team.workspace.name
    assert post(client, team.url, team.url, {"name": "  Renamed   Team "}).status_code == 303
    workspace = await fresh(db, team.workspace)
    assert workspace is not None and workspace.name == "Renamed Team"
    changed = [e for e in await events(db, team.workspace) if e.action == "settings.changed"]
    assert [e.details for e in changed] == [{"name": {"from": team.workspace.name, "to": "Renamed Team"}}]
    assert changed[0].actor_id == str(team.admin.id)


async def test_requiring_2fa(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.admin.email)
    form = {"name": team.workspace.name, "require_2fa": "on"}
    refused = post(client, team.url, team.url, form)
    assert refused.status_code == 422 and "Turn on two-factor authentication for your own account first" in refused.text
    workspace = await fresh(db, team.workspace)
    assert workspace is not None and not workspace.require_2fa
    async with db.public_session() as session:
        await session.execute(update(User).where(User.id == team.admin.id).values(totp_enabled_at=now()))
    assert post(client, team.url, team.url, form).status_code == 303
    workspace = await fresh(db, team.workspace)
    assert workspace is not None and workspace.require_2fa
    [event] = [e for e in await events(db, team.workspace) if e.action == "workspace.2fa_required_changed"]
    assert event.details == {"from": False, "to": True}
    # A member without 2FA is now sent to set it up before seeing the workspace.
    client.cookies.clear()
    log_in(client, team.member.email)
    blocked = client.get(f"/w/{team.workspace.slug}")
    assert blocked.status_code == 303 and blocked.headers["location"].startswith("/account/2fa")


async def test_members_see_settings_read_only_and_cannot_post(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    page = client.get(team.url)
    assert page.status_code == 200 and "Only owners and admins can change these." in page.text
    assert f'action="{team.url}"' not in page.text and "/settings/delete" not in page.text
    assert f'action="/w/{team.workspace.slug}/leave"' in page.text
    for action in (team.url, team.url + "/transfer", team.url + "/delete"):
        data = {"name": "Mine", "member": str(team.member.id), "confirm_name": team.workspace.name}
        assert post(client, team.url, action, data).status_code == 403
    assert await role_of(db, team.workspace.id, team.owner.id) == "owner"
    workspace = await fresh(db, team.workspace)
    assert workspace is not None and workspace.name == team.workspace.name


async def test_admin_cannot_transfer_or_delete(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.admin.email)
    page = client.get(team.url)
    assert "/settings/transfer" not in page.text and "/settings/delete" not in page.text
    assert post(client, team.url, team.url + "/transfer", {"member": str(team.admin.id)}).status_code == 403
    assert post(client, team.url, team.url + "/delete", {"confirm_name": team.workspace.name}).status_code == 403
    assert await fresh(db, team.workspace) is not None


async def test_owner_cannot_leave_then_transfers_and_leaves(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.owner.email)
    leave_url = f"/w/{team.workspace.slug}/leave"
    refused = post(client, team.url, leave_url)
    assert refused.status_code == 303 and refused.headers["location"] == team.url
    assert "Transfer ownership to another member before leaving" in client.get(team.url).text
    assert await role_of(db, team.workspace.id, team.owner.id) == "owner"

    bad = post(client, team.url, team.url + "/transfer", {"member": "nobody"})
    assert bad.status_code == 422 and "not a member of this workspace" in bad.text
    assert post(client, team.url, team.url + "/transfer", {"member": str(team.member.id)}).status_code == 303
    assert await role_of(db, team.workspace.id, team.member.id) == "owner"
    assert await role_of(db, team.workspace.id, team.owner.id) == "admin"
    [event] = [e for e in await events(db, team.workspace) if e.action == "ownership.transferred"]
    assert event.details["from"] == team.owner.email and event.details["to"] == team.member.email

    left = post(client, team.url, leave_url)
    assert left.status_code == 303 and left.headers["location"] == "/workspaces"
    assert await role_of(db, team.workspace.id, team.owner.id) is None
    assert client.get(f"/w/{team.workspace.slug}").status_code == 404
    assert [e.action for e in await events(db, team.workspace)][-1] == "member.left"


async def test_delete_needs_the_exact_name(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.owner.email)
    schema = schema_for(team.workspace.id)
    for typed in ("", "settings team", team.workspace.name + "!"):
        refused = post(client, team.url, team.url + "/delete", {"confirm_name": typed})
        assert refused.status_code == 422 and "exactly to confirm" in refused.text
    assert await fresh(db, team.workspace) is not None
    deleted = post(client, team.url, team.url + "/delete", {"confirm_name": f" {team.workspace.name} "})
    assert deleted.status_code == 303 and deleted.headers["location"] == "/workspaces"
    assert await fresh(db, team.workspace) is None
    async with db.engine.connect() as connection:
        assert await connection.scalar(text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}) == 0
        assert await connection.scalar(text("SELECT count(*) FROM pg_roles WHERE rolname = :s"), {"s": schema}) == 0
    assert client.get(team.url).status_code == 404
    client.cookies.clear()
    log_in(client, team.admin.email)
    assert client.get(f"/w/{team.workspace.slug}").status_code == 404
