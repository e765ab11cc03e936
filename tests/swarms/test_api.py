"""The swarms API: start (every problem at once), preview, list, get, events, cancel; other workspaces 404."""

from __future__ import annotations

import secrets
from typing import Any

import pytest

from app.agents.models import Agent
from app.config import Settings
from app.db import Database
from tests.api.helpers import Team, api_client, audit_actions, error_of, make_team

REQUEST: dict[str, Any] = {
    "agent_id": "yukihiro",
    "title": "Build the API",
    "max_concurrent": 2,
    "tasks": [
        {"key": "a", "title": "Scaffold", "execution_prompt": "Scaffold it.", "project_id": "proj_x"},
        {"key": "b", "title": "Auth", "execution_prompt": "Add auth.", "dependencies": ["a"]},
        {"key": "c", "title": "Docs", "execution_prompt": "Write docs.", "dependencies": ["a"]},
    ],
}


async def team_with_agent(db: Database, settings: Settings) -> Team:
    team = await make_team(db, settings, f"swarmapi-{secrets.token_hex(2)}")
    async with db.tenant_session(team.workspace.id) as session:
        session.add(Agent(id="yukihiro", name="Yukihiro", role="Engineer", model=None, tools=["read"]))
    return team


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    return await team_with_agent(db, settings)


def base(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace.slug}/swarms"


async def test_start_list_get_events_cancel(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        response = client.post(base(team), json=REQUEST)
        assert response.status_code == 201, response.text
        swarm = response.json()
        assert swarm["id"].startswith("swarm_") and swarm["status"] == "running" and swarm["origin"] == "api"
        assert [(t["key"], t["status"], t["level"]) for t in swarm["tasks"]] == [
            ("a", "ready", 0), ("b", "pending", 1), ("c", "pending", 1),
        ]  # fmt: skip
        listed = client.get(base(team)).json()
        assert [s["id"] for s in listed["data"]] == [swarm["id"]]
        assert listed["data"][0]["counts"] == {"ready": 1, "pending": 2}
        one = client.get(f"{base(team)}/{swarm['id']}").json()
        assert one["title"] == "Build the API" and one["max_concurrent"] == 2
        task = client.get(f"{base(team)}/{swarm['id']}/tasks/b").json()
        assert task["execution_prompt"] == "Add auth." and task["dependencies"] == ["a"]
        events = client.get(f"{base(team)}/{swarm['id']}/events").json()
        assert [e["type"] for e in events["events"]] == ["SWARM_LAUNCHED"] and events["status"] == "running"
        later = client.get(f"{base(team)}/{swarm['id']}/events", params={"after": events["after"]}).json()
        assert later["events"] == [] and later["after"] == events["after"]
        assert client.get(f"{base(team)}/{swarm['id']}/events", params={"after": "x"}).status_code == 422

        cancelled = client.post(f"{base(team)}/{swarm['id']}/cancel")
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        assert {t["status"] for t in cancelled.json()["tasks"]} == {"cancelled"}
        again = client.post(f"{base(team)}/{swarm['id']}/cancel")
        assert again.status_code == 422 and "already" in error_of(again)["message"]
        types = [e["type"] for e in client.get(f"{base(team)}/{swarm['id']}/events").json()["events"]]
        assert types[-1] == "SWARM_FAILED" and types.count("STEP_CANCELLED") == 3
    actions = [action for action, _ in await audit_actions(db, team.workspace.id)]
    assert "swarm.started" in actions and "swarm.cancelled" in actions


async def test_every_problem_is_a_field_error_and_nothing_is_started(
    settings: Settings, db: Database, team: Team
) -> None:
    bad = {
        "agent_id": "ghost",
        "max_concurrent": 99,
        "tasks": [
            {"key": "a", "title": "A", "execution_prompt": "x", "dependencies": ["c"]},
            {"key": "b", "title": "B", "execution_prompt": "x", "dependencies": ["b", "zzz"]},
            {"key": "c", "title": "C", "execution_prompt": "x", "dependencies": ["a"]},
            {"key": "c", "title": "", "execution_prompt": "x"},
        ],
    }
    with api_client(settings, team.cookies["member"]) as client:
        response = client.post(base(team), json=bad)
        assert response.status_code == 422
        errors = {e["field"]: e["message"] for e in error_of(response)["details"]["errors"]}
        assert "no agent 'ghost'" in errors["agent_id"]
        assert "between 1 and 32" in errors["max_concurrent"]
        assert "depends on itself" in errors["tasks[1].dependencies[0]"]
        assert "'zzz'" in errors["tasks[1].dependencies[1]"]
        assert "already used" in errors["tasks[3].key"]
        assert "tasks[3].title" in errors
        assert "a → c → a" in errors["tasks[0].dependencies"]
        preview = client.post(f"{base(team)}/preview", json=bad).json()
        assert preview["valid"] is False and len(preview["problems"]) == 7
        good = client.post(f"{base(team)}/preview", json=REQUEST).json()
        assert good == {
            "valid": True, "problems": [], "total_tasks": 3, "dag_depth": 2, "root_tasks": ["a"], "warnings": [],
        }  # fmt: skip
        assert client.get(base(team)).json()["data"] == []


async def test_viewers_read_but_do_not_start(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["viewer"]) as client:
        assert client.post(base(team), json=REQUEST).status_code == 403
        assert client.get(base(team)).status_code == 200


async def test_another_workspace_swarm_is_not_found(settings: Settings, db: Database, team: Team) -> None:
    other = await team_with_agent(db, settings)
    with api_client(settings, team.cookies["member"]) as client:
        swarm_id = client.post(base(team), json=REQUEST).json()["id"]
    with api_client(settings, other.cookies["owner"]) as client:
        for method, path in (
            ("GET", f"{base(other)}/{swarm_id}"),
            ("GET", f"{base(other)}/{swarm_id}/tasks/a"),
            ("GET", f"{base(other)}/{swarm_id}/events"),
            ("POST", f"{base(other)}/{swarm_id}/cancel"),
        ):
            response = client.request(method, path)
            assert response.status_code == 404, (path, response.text)
            assert error_of(response)["code"] == "not_found"
        assert client.get(base(other)).json()["data"] == []
