"""Onboarding offers the starter team after the invitations: all ticked, add them, untick some, or skip."""

from __future__ import annotations

import secrets

import pytest
from starlette.testclient import TestClient

from app.agents.roster import starters
from app.auth.models import User
from app.db import Database
from app.onboarding.steps import STEPS, next_step
from app.tenants.models import Workspace
from tests.agents.helpers import agents_in, audit_of
from tests.helpers import csrf_of, log_in, workspace_with


@pytest.fixture
async def team(db: Database) -> tuple[Workspace, User, User]:
    workspace, (owner, viewer) = await workspace_with(db, f"onboard-{secrets.token_hex(3)}", ["viewer"])
    return workspace, owner, viewer


def test_the_step_follows_the_llm_step() -> None:
    # Agents need a model, so the team is offered once an LLM is connected (or the demo model chosen).
    keys = [step.key for step in STEPS]
    assert keys.index("agents") == keys.index("llm") + 1
    assert next_step("llm", "acme") == "/w/acme/onboarding/agents"


async def test_the_whole_team_is_offered_ticked_and_added(
    client: TestClient, db: Database, team: tuple[Workspace, User, User]
) -> None:
    workspace, owner, _ = team
    log_in(client, owner.email)
    url = f"/w/{workspace.slug}/onboarding/agents"
    page = client.get(url)
    assert page.status_code == 200 and "<h1>Add your team of agents</h1>" in page.text
    assert page.text.count('name="roster"') == len(starters()) == page.text.count(" checked>")
    assert f'href="{next_step("agents", workspace.slug)}"' in page.text  # Skip
    assert 'aria-current="step">Add your team of agents' in page.text
    response = client.post(url, data={"csrf_token": csrf_of(page.text), "roster": [item.id for item in starters()]})
    assert response.status_code == 303 and response.headers["location"] == next_step("agents", workspace.slug)
    assert sorted(await agents_in(db, workspace.id)) == sorted(item.id for item in starters())
    entries = await audit_of(db, workspace.id, "agent.created")
    assert len(entries) == len(starters()) and {actor for _, _, actor in entries} == {str(owner.id)}
    # Back on the step later: the team is there, nothing left to tick.
    again = client.get(url)
    assert again.text.count("already added") == len(starters()) and " checked>" not in again.text


async def test_some_or_none(client: TestClient, db: Database, team: tuple[Workspace, User, User]) -> None:
    workspace, owner, viewer = team
    log_in(client, owner.email)
    url = f"/w/{workspace.slug}/onboarding/agents"
    token = csrf_of(client.get(url).text)
    nothing = client.post(url, data={"csrf_token": token})
    assert nothing.status_code == 422 and "Choose at least one agent" in nothing.text
    assert " checked>" not in nothing.text  # what was ticked (nothing) is what shows again
    response = client.post(url, data={"csrf_token": token, "roster": ["architect", "software-engineer"]})
    assert response.status_code == 303
    assert sorted(await agents_in(db, workspace.id)) == ["architect", "software-engineer"]
    client.cookies.clear()
    log_in(client, viewer.email)
    assert client.get(url).status_code == 403
    assert (
        client.post(
            url, data={"csrf_token": csrf_of(client.get(f"/w/{workspace.slug}").text), "roster": "sre"}
        ).status_code
        == 403
    )
    assert sorted(await agents_in(db, workspace.id)) == ["architect", "software-engineer"]
