"""A workspace's swarm limits, set by its admins on the limits page or through the API (twins of one service):
within the platform's ceilings, every bad value named and nothing changed, audited, and obeyed by the next start."""

from __future__ import annotations

from typing import Any

import pytest

from app.agents.models import Agent
from app.config import Settings
from app.db import Database
from app.swarms import limits
from tests.api.helpers import Team, api_client, audit_actions, error_of, make_team

LOWER = {"max_tasks": 2, "max_concurrent": 2, "workspace_concurrency": 4}


def swarm(count: int) -> dict[str, Any]:
    return {"agent_id": "yukihiro", "tasks": [{"key": f"t{n}", "title": "T", "execution_prompt": "Do it."}
                                              for n in range(count)]}  # fmt: skip


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    made = await make_team(db, settings, "swarmlimits")
    async with db.tenant_session(made.workspace.id) as session:
        session.add(Agent(id="yukihiro", name="Yukihiro", role="Engineer", model=None, tools=["read"]))
    return made


def url(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace.slug}/swarms/limits"


async def test_admins_lower_the_limits_and_the_next_start_obeys(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        shown = client.get(url(team)).json()
        assert shown == {"max_tasks": 500, "max_concurrent": 32, "workspace_concurrency": 32,
                         "ceilings": {"max_tasks": 500, "max_concurrent": 32, "workspace_concurrency": 32}}  # fmt: skip
        assert client.put(url(team), json=LOWER).status_code == 403  # members run swarms; admins set limits
    with api_client(settings, team.cookies["admin"]) as client:
        saved = client.put(url(team), json=LOWER)
        assert saved.status_code == 200, saved.text
        assert {k: v for k, v in saved.json().items() if k != "ceilings"} == LOWER
    swarms = f"/api/v1/workspaces/{team.workspace.slug}/swarms"
    with api_client(settings, team.cookies["member"]) as client:
        refused = client.post(swarms, json=swarm(3))
        assert refused.status_code == 422
        assert "3 tasks; this workspace allows up to 2" in str(error_of(refused))
        too_wide = client.post(swarms, json={**swarm(2), "max_concurrent": 3})
        assert too_wide.status_code == 422 and "max_concurrent" in str(error_of(too_wide))
        assert client.post(swarms, json=swarm(2)).status_code == 201
    changes = [details for action, details in await audit_actions(db, team.workspace.id)
               if action == "swarm.limits_changed"]  # fmt: skip
    assert changes == [{"from": {"max_tasks": 500, "max_concurrent": 32, "workspace_concurrency": 32}, "to": LOWER,
                        **LOWER}]  # fmt: skip


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"max_tasks": 0, "max_concurrent": 33, "workspace_concurrency": 1}, {"max_tasks", "max_concurrent"}),
        ({"max_tasks": 501, "max_concurrent": 1, "workspace_concurrency": 64}, {"max_tasks", "workspace_concurrency"}),
        ({"max_tasks": 10, "max_concurrent": 8, "workspace_concurrency": 4}, {"max_concurrent"}),
    ],
)
async def test_every_bad_limit_is_named_and_nothing_changes(
    settings: Settings, db: Database, team: Team, body: dict[str, int], fields: set[str]
) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        refused = client.put(url(team), json=body)
        assert refused.status_code == 422, refused.text
        assert {error["field"] for error in error_of(refused)["details"]["errors"]} == fields
        assert client.put(url(team), json={**LOWER, "max_tasks": "2"}).status_code == 422  # a string is no number
        assert {k: v for k, v in client.get(url(team)).json().items() if k != "ceilings"} == {
            "max_tasks": 500, "max_concurrent": 32, "workspace_concurrency": 32,
        }  # fmt: skip
    assert "swarm.limits_changed" not in [action for action, _ in await audit_actions(db, team.workspace.id)]


async def test_the_limits_page_shows_admins_a_form_and_others_the_values(
    settings: Settings, db: Database, team: Team
) -> None:
    page = f"/w/{team.workspace.slug}/swarms/limits"
    with api_client(settings, team.cookies["viewer"]) as client:
        seen = client.get(page)
        assert seen.status_code == 200 and "Only owners and admins can change these." in seen.text
        assert 'name="max_tasks"' not in seen.text
        assert client.post(page, data=dict.fromkeys(limits.LABELS, "1")).status_code == 403
    with api_client(settings, team.cookies["owner"]) as client:
        form = client.get(page)
        assert 'name="max_tasks"' in form.text and 'value="500"' in form.text
        bad = client.post(page, data={"max_tasks": "lots", "max_concurrent": "4", "workspace_concurrency": "99"})
        assert bad.status_code == 422
        assert "Tasks in one swarm: enter a whole number." in bad.text
        assert 'value="lots"' in bad.text  # what was typed comes back to be fixed
        saved = client.post(page, data={"max_tasks": "100", "max_concurrent": "4", "workspace_concurrency": "8"},
                            follow_redirects=False)  # fmt: skip
        assert saved.status_code == 303 and saved.headers["location"].endswith("/swarms/limits")
        assert client.get(url(team)).json()["max_tasks"] == 100
        again = client.post(page, data={"max_tasks": "100", "max_concurrent": "4", "workspace_concurrency": "8"})
        assert again.status_code == 303
        assert "Nothing to change." in client.get(again.headers["location"]).text
