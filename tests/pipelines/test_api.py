"""The pipelines API does what the pages do: the same services, refusals with every problem's line and column,
versions, export that imports unchanged, starters with their agents; viewers read only; other workspaces 404."""

from __future__ import annotations

import secrets

import pytest

from app.config import Settings
from app.db import Database
from app.pipelines.starters import starter_source
from tests.agents.helpers import agents_in, audit_of
from tests.api.helpers import Team, api_client, error_of, make_team
from tests.pipelines.test_pages_http import SMALL, versions_of


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    return await make_team(db, settings, f"pipeapi-{secrets.token_hex(2)}")


def base(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace.slug}"


async def test_starter_save_versions_export_and_delete(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        starters = client.get(f"{base(team)}/pipeline-starters").json()["data"]
        assert [s["id"] for s in starters] == ["bugfix", "engineering", "feature", "planning"]
        added = client.post(f"{base(team)}/pipeline-starters", json={"starter": "engineering"})
        assert added.status_code == 201, added.text
        body = added.json()
        assert body["added"] is True and body["pipeline"]["id"] == "engineering"
        assert set(body["agents_added"]) == set(next(s for s in starters if s["id"] == "engineering")["agents"])
        again = client.post(f"{base(team)}/pipeline-starters", json={"starter": "engineering"}).json()
        assert again["added"] is False and again["agents_added"] == []

        one = client.get(f"{base(team)}/pipelines/engineering").json()
        assert one["current_version"] == 1 and one["yaml"] == starter_source("engineering")
        changed = one["yaml"].replace("name: Engineering", "name: Engineering 2")
        saved = client.put(f"{base(team)}/pipelines/engineering", json={"yaml": changed, "note": "rename"})
        assert saved.status_code == 200 and saved.json()["number"] == 2 and saved.json()["note"] == "rename"
        versions = client.get(f"{base(team)}/pipelines/engineering/versions").json()["data"]
        assert [v["number"] for v in versions] == [2, 1]
        first = client.get(f"{base(team)}/pipelines/engineering/versions/1").json()
        assert first["yaml"] == starter_source("engineering")
        assert client.get(f"{base(team)}/pipelines/engineering/versions/7").status_code == 404
        assert client.get(f"{base(team)}/pipelines/engineering/versions/x").status_code == 404

        exported = client.get(f"{base(team)}/pipelines/engineering/export")
        assert exported.status_code == 200 and exported.text == changed
        assert exported.headers["content-type"].startswith("application/yaml")
        assert client.get(f"{base(team)}/pipelines/engineering/export?version=1").text == starter_source("engineering")
        # what is exported imports unchanged (as the next version of the same pipeline)
        imported = client.post(f"{base(team)}/pipelines", json={"yaml": exported.text})
        assert imported.status_code == 201 and imported.json()["number"] == 3

        listed = client.get(f"{base(team)}/pipelines").json()
        assert [p["id"] for p in listed["data"]] == ["engineering"] and listed["next_cursor"] is None
        assert client.delete(f"{base(team)}/pipelines/engineering").status_code == 204
        assert client.get(f"{base(team)}/pipelines/engineering").status_code == 404
    actions = [action for action, _, _ in await audit_of(db, team.workspace.id, "pipeline.")]
    assert actions == ["pipeline.created", "pipeline.saved", "pipeline.saved", "pipeline.deleted"]


async def test_invalid_pipelines_are_refused_with_every_problem_and_change_nothing(
    settings: Settings, db: Database, team: Team
) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        refused = client.post(f"{base(team)}/pipelines", json={"yaml": SMALL})  # its agent is not in the workspace
        assert refused.status_code == 422
        error = error_of(refused)
        assert error["code"] == "pipeline_invalid"
        [problem] = [p for p in error["details"]["problems"] if p["severity"] == "error"]
        assert (problem["code"], problem["line"], problem["path"]) == ("workspace_agent", 5, "agents[0].id")
        assert error["details"]["errors"][0]["field"] == "yaml"

        bad = "id: x\nname: X\nversion: 1\nagents: []\nsteps:\n  - id: A\n    agent: a\n    onComplete: B\n"
        checked = client.post(f"{base(team)}/pipelines/validate", json={"yaml": bad}).json()
        assert checked["valid"] is False
        codes = {p["code"] for p in checked["problems"]}
        assert "unknown_step" in codes and all(p["line"] >= 1 and p["column"] >= 1 for p in checked["problems"])
        unreadable = client.post(f"{base(team)}/pipelines/validate", json={"yaml": "a: [b"}).json()
        assert unreadable["valid"] is False and unreadable["problems"]

        client.post(f"{base(team)}/pipeline-starters", json={"starter": "bugfix"})
        other_id = starter_source("bugfix").replace("id: bugfix", "id: renamed", 1)
        response = client.put(f"{base(team)}/pipelines/bugfix", json={"yaml": other_id})
        assert response.status_code == 422 and "cannot change" in str(error_of(response)["details"])
        assert client.put(f"{base(team)}/pipelines/nope", json={"yaml": other_id}).status_code == 404
        assert client.post(f"{base(team)}/pipeline-starters", json={"starter": "nope"}).status_code == 404
        assert client.post(f"{base(team)}/pipelines", json={"yaml": ""}).status_code == 422
    assert await versions_of(db, team.workspace.id) == {"bugfix": [1]}


async def test_viewers_read_only_and_other_workspaces_are_not_found(
    settings: Settings, db: Database, team: Team
) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        assert client.post(f"{base(team)}/pipeline-starters", json={"starter": "planning"}).status_code == 201
    with api_client(settings, team.cookies["viewer"]) as client:
        assert client.get(f"{base(team)}/pipelines/planning").status_code == 200
        assert client.get(f"{base(team)}/pipelines/planning/export").status_code == 200
        body = {"yaml": starter_source("planning")}
        assert client.put(f"{base(team)}/pipelines/planning", json=body).status_code == 403
        assert client.post(f"{base(team)}/pipelines", json=body).status_code == 403
        assert client.delete(f"{base(team)}/pipelines/planning").status_code == 403
        assert client.post(f"{base(team)}/pipeline-starters", json={"starter": "bugfix"}).status_code == 403
    other = await make_team(db, settings, f"pipeapi2-{secrets.token_hex(2)}")
    with api_client(settings, other.cookies["owner"]) as client:
        there = f"/api/v1/workspaces/{other.workspace.slug}/pipelines/planning"
        assert client.get(there).status_code == 404
        assert client.delete(there).status_code == 404
        assert client.get(f"{base(team)}/pipelines/planning").status_code == 404
    assert await versions_of(db, team.workspace.id) == {"planning": [1]}
    assert "product-owner" in await agents_in(db, team.workspace.id)
