"""The pipeline pages over HTTP: the list with the starters, the editor's live check, save (a new version),
versions with diffs, export, import and delete; refusals change nothing; viewers read but cannot change;
another workspace's pipelines are not found."""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.auth.models import User
from app.db import Database
from app.pipelines.models import PipelineRecord, PipelineVersion
from app.pipelines.starters import starter_source
from app.tenants.models import Workspace
from tests.agents.helpers import agents_in, audit_of
from tests.helpers import csrf_of, log_in, workspace_with


@dataclass
class Team:
    workspace: Workspace
    owner: User
    member: User
    viewer: User

    @property
    def url(self) -> str:
        return f"/w/{self.workspace.slug}/pipelines"


@pytest.fixture
async def team(db: Database) -> Team:
    workspace, (owner, member, viewer) = await workspace_with(
        db, f"pipepages-{secrets.token_hex(3)}", ["member", "viewer"]
    )
    return Team(workspace, owner, member, viewer)


async def versions_of(db: Database, workspace_id: str) -> dict[str, list[int]]:
    async with db.tenant_session(workspace_id) as session:
        rows = await session.scalars(select(PipelineVersion).order_by(PipelineVersion.number))
        found: dict[str, list[int]] = {}
        for row in rows:
            found.setdefault(row.pipeline_id, []).append(row.number)
        return found


def post(client: TestClient, page: str, action: str, form: dict[str, str]) -> object:
    token = csrf_of(client.get(page).text)
    return client.post(action, data={"csrf_token": token, **form})


SMALL = """id: tiny
name: Tiny
version: 1.0.0
agents:
  - id: software-engineer
    name: Software engineer
steps:
  - id: ONLY
    agent: software-engineer
    input: "{{task_description}}"
"""


async def test_a_member_adds_a_starter_edits_it_and_reads_its_versions(
    client: TestClient, db: Database, team: Team
) -> None:
    log_in(client, team.member.email)
    listing = client.get(team.url)
    assert listing.status_code == 200 and 'data-starter="engineering"' in listing.text

    response = post(client, team.url, f"{team.url}/starters", {"starter": "engineering"})
    assert response.status_code == 303, response.text  # type: ignore[attr-defined]
    assert response.headers["location"] == f"{team.url}/engineering"  # type: ignore[attr-defined]
    agents = await agents_in(db, team.workspace.id)
    assert {"product-owner", "architect", "software-engineer", "test-engineer", "sre", "ux-designer"} <= set(agents)
    assert await versions_of(db, team.workspace.id) == {"engineering": [1]}

    page = client.get(f"{team.url}/engineering")
    assert page.status_code == 200
    assert "<svg" in page.text and 'class="pipeline-graph"' in page.text and "Valid" in page.text
    assert 'hx-post="' + f"{team.url}/check" + '"' in page.text

    changed = starter_source("engineering").replace("name: Engineering", "name: Engineering (ours)")
    response = post(client, f"{team.url}/engineering", f"{team.url}/engineering", {"yaml": changed, "note": "renamed"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert await versions_of(db, team.workspace.id) == {"engineering": [1, 2]}

    version = client.get(f"{team.url}/engineering/versions/2")
    assert version.status_code == 200
    assert '<span class="diff-del">-name: Engineering</span>' in version.text
    assert '<span class="diff-add">+name: Engineering (ours)</span>' in version.text
    assert client.get(f"{team.url}/engineering/versions/9").status_code == 404

    exported = client.get(f"{team.url}/engineering/export")
    assert exported.status_code == 200 and exported.text == changed
    assert exported.headers["content-disposition"] == 'attachment; filename="engineering.yml"'
    first = client.get(f"{team.url}/engineering/export?version=1")
    assert first.text == starter_source("engineering")
    restored = client.get(f"{team.url}/engineering?from_version=1")
    assert "name: Engineering\n" in restored.text and "restored version 1" in restored.text

    actions = [action for action, _, _ in await audit_of(db, team.workspace.id, "pipeline.")]
    assert actions == ["pipeline.created", "pipeline.saved"]


async def test_the_live_check_lists_every_problem_with_its_place_and_saves_nothing(
    client: TestClient, db: Database, team: Team
) -> None:
    log_in(client, team.member.email)
    token = csrf_of(client.get(f"{team.url}/new").text)
    bad = (
        "id: broken\nname: Broken\nsteps:\n  - id: A\n    agent: nobody\n    onComplete: NOWHERE\n"
        "  - id: A\n    agent: nobody\n"
    )
    response = client.post(
        f"{team.url}/check", data={"yaml": bad}, headers={"X-CSRF-Token": token, "HX-Request": "true"}
    )
    assert response.status_code == 200
    assert "<html" not in response.text and 'data-goto-line="6"' in response.text
    assert 'data-goto-line="7"' in response.text  # the duplicate id, on its own line
    assert "NOWHERE" in response.text
    good = client.post(f"{team.url}/check", data={"yaml": SMALL}, headers={"X-CSRF-Token": token})
    # the agent is not in this workspace yet: a precise error, and still a graph of the draft
    assert "software-engineer" in good.text and "<svg" in good.text and 'data-goto-line="' in good.text
    unreadable = client.post(f"{team.url}/check", data={"yaml": "id: [unclosed"}, headers={"X-CSRF-Token": token})
    assert unreadable.status_code == 200 and "error" in unreadable.text and "<svg" not in unreadable.text
    assert await versions_of(db, team.workspace.id) == {}


async def test_a_refused_save_shows_the_draft_again_and_changes_nothing(
    client: TestClient, db: Database, team: Team
) -> None:
    log_in(client, team.member.email)
    response = post(client, team.url, f"{team.url}/starters", {"starter": "bugfix"})
    assert response.status_code == 303  # type: ignore[attr-defined]
    broken = starter_source("bugfix") + "\n  - id: EXTRA\n    agent: ghost\n    onComplete: MISSING\n"
    response = post(client, f"{team.url}/bugfix", f"{team.url}/bugfix", {"yaml": broken})
    assert response.status_code == 422  # type: ignore[attr-defined]
    text = response.text  # type: ignore[attr-defined]
    assert "Not saved" in text and "MISSING" in text and "agent: ghost" in text
    renamed = starter_source("bugfix").replace("id: bugfix", "id: other", 1)
    response = post(client, f"{team.url}/bugfix", f"{team.url}/bugfix", {"yaml": renamed})
    assert response.status_code == 422 and "cannot change" in response.text  # type: ignore[attr-defined]
    response = post(client, f"{team.url}/new", team.url, {"yaml": "steps: {"})
    assert response.status_code == 422  # type: ignore[attr-defined]
    shadowing = SMALL.replace("id: tiny", "id: new")  # /pipelines/new is the new-pipeline page
    response = post(client, f"{team.url}/new", team.url, {"yaml": shadowing})
    assert response.status_code == 422 and "another id" in response.text  # type: ignore[attr-defined]
    assert await versions_of(db, team.workspace.id) == {"bugfix": [1]}


async def test_import_creates_or_adds_a_version_and_delete_asks_first(
    client: TestClient, db: Database, team: Team
) -> None:
    log_in(client, team.member.email)
    post(client, team.url, f"{team.url}/starters", {"starter": "feature"})  # brings software-engineer
    response = post(client, f"{team.url}/new", team.url, {"yaml": SMALL})
    assert response.status_code == 303  # type: ignore[attr-defined]
    assert response.headers["location"] == f"{team.url}/tiny"  # type: ignore[attr-defined]
    response = post(client, f"{team.url}/new", team.url, {"yaml": SMALL.replace("Tiny", "Tiny 2")})
    assert await versions_of(db, team.workspace.id) == {"feature": [1], "tiny": [1, 2]}

    page = client.get(f"{team.url}/tiny")
    assert 'data-confirm="Delete the pipeline' in page.text
    response = post(client, f"{team.url}/tiny", f"{team.url}/tiny/delete", {})
    assert response.headers["location"] == team.url  # type: ignore[attr-defined]
    assert await versions_of(db, team.workspace.id) == {"feature": [1]}
    assert client.get(f"{team.url}/tiny").status_code == 404
    actions = [action for action, _, _ in await audit_of(db, team.workspace.id, "pipeline.")]
    assert actions == ["pipeline.created", "pipeline.created", "pipeline.saved", "pipeline.deleted"]


async def test_viewers_read_but_cannot_change(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    post(client, team.url, f"{team.url}/starters", {"starter": "planning"})
    client.cookies.clear()
    log_in(client, team.viewer.email)
    page = client.get(f"{team.url}/planning")
    assert page.status_code == 200 and "readonly" in page.text and 'id="save-pipeline"' not in page.text
    assert client.get(f"{team.url}/planning/export").status_code == 200
    token = csrf_of(page.text)
    for action, form in [
        (f"{team.url}/planning", {"yaml": starter_source("planning")}),
        (f"{team.url}/planning/delete", {}),
        (f"{team.url}/starters", {"starter": "bugfix"}),
        (team.url, {"yaml": SMALL}),
    ]:
        response = client.post(action, data={"csrf_token": token, **form})
        assert response.status_code == 403, action
    assert client.get(f"{team.url}/new").status_code == 403
    assert await versions_of(db, team.workspace.id) == {"planning": [1]}


async def test_another_workspaces_pipelines_are_not_found(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    post(client, team.url, f"{team.url}/starters", {"starter": "bugfix"})
    other, (stranger, _) = await workspace_with(db, f"pipeother-{secrets.token_hex(3)}", ["member"])
    client.cookies.clear()
    log_in(client, stranger.email)
    there = f"/w/{other.slug}/pipelines"
    assert client.get(f"{there}/bugfix").status_code == 404
    assert client.get(f"{there}/bugfix/export").status_code == 404
    assert client.get(f"{there}/bugfix/versions/1").status_code == 404
    token = csrf_of(client.get(there).text)
    assert client.post(f"{there}/bugfix/delete", data={"csrf_token": token}).status_code == 404
    assert client.get(f"{team.url}/bugfix").status_code in (403, 404)
    async with db.tenant_session(team.workspace.id) as session:
        assert await session.get(PipelineRecord, "bugfix") is not None
