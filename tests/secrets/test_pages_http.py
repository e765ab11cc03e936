"""The secrets pages over HTTP: admins add, replace, describe, grant and delete; members and viewers see names
and masked previews only; the value field is a password field that never shows a value; bad input changes
nothing."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.agents import service as agents
from app.agents.draft import AgentDraft
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.secrets.models import SecretGrant, WorkspaceSecret
from app.tenants.models import Workspace
from tests.agents.helpers import audit_of, workspace_changes
from tests.helpers import csrf_of, log_in, person, workspace_with


@dataclass
class Team:
    workspace: Workspace
    owner: User
    admin: User
    member: User
    viewer: User

    @property
    def url(self) -> str:
        return f"/w/{self.workspace.slug}/secrets"


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    workspace, users = await workspace_with(db, f"secretpages-{secrets.token_hex(3)}", ["admin", "member", "viewer"])
    async with workspace_changes(db, settings, workspace.id) as session:
        await agents.create_agent(session, person(users[0]), "deployer", AgentDraft(name="Deployer", role="SRE"))
        await agents.create_agent(session, person(users[0]), "writer", AgentDraft(name="Writer"))
    return Team(workspace, *users)


def post(client: TestClient, page: str, action: str, form: dict[str, str | list[str]]) -> object:
    return client.post(action, data={"csrf_token": csrf_of(client.get(page).text), **form})


async def stored(db: Database, workspace: Workspace) -> list[tuple[str, str, str, str]]:
    async with db.tenant_session(workspace.id) as session:
        found = await session.scalars(select(WorkspaceSecret).order_by(WorkspaceSecret.name))
        return [(s.name, s.description, s.preview, s.sealed_value) for s in found]


async def grants(db: Database, workspace: Workspace) -> list[str]:
    async with db.tenant_session(workspace.id) as session:
        return sorted(grant.agent_id for grant in await session.scalars(select(SecretGrant)))


async def test_an_admin_manages_a_secret_end_to_end(client: TestClient, db: Database, team: Team) -> None:
    value = f"tok_{secrets.token_hex(24)}"
    log_in(client, team.admin.email)
    page = client.get(team.url)
    field = re.search(r"<input[^>]*name=\"value\"[^>]*>", page.text)
    assert field and 'type="password"' in field.group(0) and 'autocomplete="off"' in field.group(0)
    assert 'value=""' in field.group(0)
    response = post(client, team.url, team.url, {"name": "DEPLOY_TOKEN", "value": value, "description": "Prod"})
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    location = response.headers["location"]  # type: ignore[attr-defined]
    detail = client.get(location)
    assert detail.status_code == 200 and "DEPLOY_TOKEN" in detail.text and value not in detail.text
    assert f"tok…{value[-4:]}" in detail.text

    response = post(client, location, f"{location}/grants", {"agents": ["deployer", "writer"]})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert await grants(db, team.workspace) == ["deployer", "writer"]
    response = post(client, location, f"{location}/grants", {"agents": "deployer"})
    assert await grants(db, team.workspace) == ["deployer"]
    agent_page = client.get(f"/w/{team.workspace.slug}/agents/deployer")
    assert re.search(r'id="agent-secrets">\s*<code>DEPLOY_TOKEN</code>', agent_page.text)
    assert "DEPLOY_TOKEN" not in client.get(f"/w/{team.workspace.slug}/agents/writer").text

    new_value = f"new_{secrets.token_hex(24)}"
    response = post(client, location, f"{location}/value", {"value": new_value})
    assert response.status_code == 303  # type: ignore[attr-defined]
    response = post(client, location, location, {"description": "Production deploys"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    ((name, description, preview, sealed),) = await stored(db, team.workspace)
    assert (name, description, preview) == ("DEPLOY_TOKEN", "Production deploys", f"new…{new_value[-4:]}")
    listing = client.get(team.url)
    assert "Production deploys" in listing.text and "Deployer" in listing.text and new_value not in listing.text

    response = post(client, location, f"{location}/delete", {})
    assert response.status_code == 303 and response.headers["location"] == team.url  # type: ignore[attr-defined]
    assert await stored(db, team.workspace) == [] and await grants(db, team.workspace) == []
    actions = [(action, actor) for action, _, actor in await audit_of(db, team.workspace.id, "secret.")]
    admin = str(team.admin.id)
    assert actions == [
        ("secret.created", admin),
        ("secret.grants_changed", admin),
        ("secret.grants_changed", admin),
        ("secret.value_replaced", admin),
        ("secret.described", admin),
        ("secret.deleted", admin),
    ]


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"name": "TAKEN", "value": "another-secret-value"}, "name", "already is a secret called TAKEN"),
        ({"name": "lower_case", "value": "another-secret-value"}, "name", "capital letters"),
        ({"name": "PATH", "value": "another-secret-value"}, "name", "reserved"),
        ({"name": "EMPTY", "value": "   "}, "value", "Enter the secret"),
        ({"name": "LONG", "value": "another-secret-value" * 1000}, "value", "at most 16,384"),
        ({"name": "DESCRIBED", "value": "another-secret-value", "description": "d" * 300}, "description", "200"),
    ],
)
async def test_bad_input_is_a_form_error_that_changes_nothing_and_never_echoes_the_value(
    client: TestClient, db: Database, team: Team, form: dict[str, str], field: str, message: str
) -> None:
    log_in(client, team.admin.email)
    post(client, team.url, team.url, {"name": "TAKEN", "value": "the-first-value-1234"})
    before = await stored(db, team.workspace)
    response = post(client, team.url, team.url, form)
    assert response.status_code == 422  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert message in text and f'id="e-{field}"' in text
    assert "another-secret-value" not in text  # the typed value is never shown again
    assert await stored(db, team.workspace) == before
    assert len(await audit_of(db, team.workspace.id, "secret.")) == 1


async def test_members_and_viewers_see_names_but_cannot_change(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.owner.email)
    post(client, team.url, team.url, {"name": "SHARED", "value": "shared-secret-value-1234567890"})
    (secret_id,) = [row[0] for row in await _ids(db, team.workspace)]
    for user in (team.member, team.viewer):
        client.cookies.clear()
        log_in(client, user.email)
        listing = client.get(team.url)
        assert listing.status_code == 200 and "SHARED" in listing.text and 'name="value"' not in listing.text
        detail = client.get(f"{team.url}/{secret_id}")
        assert detail.status_code == 200 and "/grants" not in detail.text and "/delete" not in detail.text
        token = csrf_of(listing.text)
        for path, form in (
            ("", {"name": "MINE", "value": "x" * 20}),
            (f"/{secret_id}", {"description": "hijacked"}),
            (f"/{secret_id}/value", {"value": "attacker-value"}),
            (f"/{secret_id}/grants", {"agents": "writer"}),
            (f"/{secret_id}/delete", {}),
        ):
            response = client.post(team.url + path, data={"csrf_token": token, **form})
            assert response.status_code == 403, (user.email, path)
    assert [row[0] for row in await stored(db, team.workspace)] == ["SHARED"]
    assert await grants(db, team.workspace) == []


async def _ids(db: Database, workspace: Workspace) -> list[tuple[str]]:
    async with db.tenant_session(workspace.id) as session:
        return [(str(s.id),) for s in await session.scalars(select(WorkspaceSecret))]


async def test_grants_to_unknown_agents_and_unknown_secrets(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.admin.email)
    response = post(client, team.url, team.url, {"name": "GRANTED", "value": "granted-value-123456"})
    location = response.headers["location"]  # type: ignore[attr-defined]
    response = post(client, location, f"{location}/grants", {"agents": ["deployer", "ghost"]})
    assert response.status_code == 422 and "No such agent in this workspace: ghost" in response.text  # type: ignore[attr-defined]
    assert await grants(db, team.workspace) == []
    for path in ("/not-a-uuid", "/00000000-0000-0000-0000-000000000000"):
        assert client.get(team.url + path).status_code == 404
        assert post(client, team.url, team.url + path + "/delete", {}).status_code == 404  # type: ignore[attr-defined]
    fragment = client.get(location, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text


async def test_the_agent_page_shows_no_secrets_when_none_are_granted(client: TestClient, team: Team) -> None:
    log_in(client, team.viewer.email)
    page = client.get(f"/w/{team.workspace.slug}/agents/deployer")
    assert "None granted" in page.text
