"""The swarms pages over HTTP: the composer's live preview (problems, or depth, roots and the drawing), start
from pasted YAML and from the form, the swarm's page (status bar, DAG, timeline), a task's page, cancel; viewers
see but cannot start; another workspace's swarm is a 404."""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

import pytest
from starlette.testclient import TestClient

from app.agents.models import Agent
from app.auth.models import User
from app.db import Database
from app.tenants.models import Workspace
from tests.helpers import csrf_of, log_in, workspace_with

YAML = """\
agent_id: yukihiro
title: Three notes
tasks:
  - {key: a, title: First, execution_prompt: Write a.}
  - {key: b, title: "<b>Second</b>", execution_prompt: Write b., dependencies: [a]}
  - {key: c, title: Third, execution_prompt: Write c., dependencies: [a, b]}
"""


@dataclass
class Team:
    workspace: Workspace
    member: User
    viewer: User

    @property
    def url(self) -> str:
        return f"/w/{self.workspace.slug}/swarms"


async def make_team(db: Database) -> Team:
    workspace, (_, member, viewer) = await workspace_with(
        db, f"swarmpages-{secrets.token_hex(3)}", ["member", "viewer"]
    )
    async with db.tenant_session(workspace.id) as session:
        session.add(Agent(id="yukihiro", name="Yukihiro", role="Engineer", model=None, tools=["read"]))
    return Team(workspace, member, viewer)


@pytest.fixture
async def team(db: Database) -> Team:
    return await make_team(db)


def fields(client: TestClient, page: str) -> dict[str, str]:
    text = client.get(page).text
    form_id = re.search(r'name="form_id" value="([^"]+)"', text)
    return {"csrf_token": csrf_of(text), **({"form_id": form_id.group(1)} if form_id else {})}


async def test_compose_preview_start_watch_and_cancel(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    assert "No swarms yet" in client.get(team.url).text
    new = client.get(f"{team.url}/new")
    assert new.status_code == 200 and "agent_id: yukihiro" in new.text and "<svg" in new.text  # the example's graph
    token = fields(client, f"{team.url}/new")

    bad = YAML.replace("dependencies: [a]}", "dependencies: [c]}")
    preview = client.post(f"{team.url}/preview", data={**token, "request": bad})
    assert preview.status_code == 200 and "nothing would start" in preview.text
    assert "dependency cycle: b → c → b" in preview.text
    good = client.post(f"{team.url}/preview", data={**token, "request": YAML})
    assert "<strong>3</strong> tasks" in good.text and "depth <strong>3</strong>" in good.text
    assert "&lt;b&gt;Second&lt;/b&gt;" in good.text and "<b>Second</b>" not in good.text  # titles are escaped

    refused = client.post(team.url, data={**token, "request": bad})
    assert refused.status_code == 422 and "The swarm was not started" in refused.text
    started = client.post(team.url, data={**fields(client, f"{team.url}/new"), "request": YAML})
    assert started.status_code == 303, started.text
    page_url = started.headers["location"]
    swarm_id = page_url.rsplit("/", 1)[1]
    assert swarm_id.startswith("swarm_")

    page = client.get(page_url)
    assert page.status_code == 200
    assert 'class="swarm-dag"' in page.text and 'data-key="c" data-status="pending"' in page.text
    assert 'data-count="ready"' in page.text and "No task has started yet." in page.text
    assert "data-stream=" in page.text and f"topics=swarm:{swarm_id}" in page.text
    fragment = client.get(page_url, headers={"HX-Request": "true"})
    assert fragment.status_code == 200 and "<html" not in fragment.text and "swarm-dag" in fragment.text
    task = client.get(f"{page_url}/tasks/b")
    assert task.status_code == 200 and "Write b." in task.text and "&lt;b&gt;Second&lt;/b&gt;" in task.text
    assert client.get(f"{page_url}/tasks/zzz").status_code == 404
    listing = client.get(team.url)
    assert swarm_id in listing.text and "Three notes" in listing.text

    cancelled = client.post(f"{page_url}/cancel", data={"csrf_token": csrf_of(page.text)})
    assert cancelled.status_code == 303
    after = client.get(page_url)
    assert 'data-status="cancelled" data-swarm-status' in after.text and "data-stream=" not in after.text


async def test_the_form_builds_the_same_request(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    form = {
        **fields(client, f"{team.url}/new?mode=form"), "mode": "form", "agent_id": "yukihiro", "title": "Formed",
        "max_concurrent": "2", "task-0-key": "a", "task-0-title": "A", "task-0-prompt": "Do a.",
        "task-1-key": "b", "task-1-title": "B", "task-1-prompt": "Do b.", "task-1-deps": "a",
    }  # fmt: skip
    preview = client.post(f"{team.url}/preview", data=form)
    assert "<strong>2</strong> tasks" in preview.text and "depth <strong>2</strong>" in preview.text
    started = client.post(team.url, data=form)
    assert started.status_code == 303, started.text
    page = client.get(started.headers["location"])
    assert "Formed" in page.text and 'data-key="b" data-status="pending"' in page.text


async def test_viewers_watch_but_do_not_start_and_others_get_404(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    started = client.post(team.url, data={**fields(client, f"{team.url}/new"), "request": YAML})
    page_url = started.headers["location"]
    client.cookies.clear()
    log_in(client, team.viewer.email)
    assert client.get(page_url).status_code == 200
    assert client.get(f"{team.url}/new").status_code == 403
    assert "Cancel the swarm" not in client.get(page_url).text
    other = await make_team(db)
    client.cookies.clear()
    log_in(client, other.member.email)
    swarm_id = page_url.rsplit("/", 1)[1]
    assert client.get(f"{other.url}/{swarm_id}").status_code == 404
    assert client.get(f"{other.url}/{swarm_id}/tasks/a").status_code == 404
    token = csrf_of(client.get(other.url).text)
    assert client.post(f"{other.url}/{swarm_id}/cancel", data={"csrf_token": token}).status_code == 404
    # Ids that could never name a swarm (nor a live topic) are a 404 too, on every swarm page.
    for malformed in ("_Lf-5tFTHXHuyJRo", "-x", "a" * 200):
        assert client.get(f"{other.url}/{malformed}").status_code == 404
        assert client.get(f"{other.url}/{malformed}/tasks/a").status_code == 404


async def test_a_finished_swarm_offers_no_cancel(client: TestClient, db: Database, team: Team) -> None:
    # Seen in a browser: "Cancel the swarm" stayed on a completed swarm's page (it sat outside the live part).
    from sqlalchemy import update

    from app.swarms.models import Swarm

    log_in(client, team.member.email)
    started = client.post(team.url, data={**fields(client, f"{team.url}/new"), "request": YAML})
    page_url = started.headers["location"]
    assert "Cancel the swarm" in client.get(page_url).text
    live = client.get(page_url, headers={"HX-Request": "true"}).text
    swarm_id = page_url.rsplit("/", 1)[1]
    async with db.tenant_session(team.workspace.id) as session:
        await session.execute(update(Swarm).where(Swarm.id == swarm_id).values(status="completed"))
    assert "Cancel the swarm" not in client.get(page_url).text
    assert "Cancel the swarm" in live  # the live part carries it: refreshed after the end, it is gone
    assert "Cancel the swarm" not in client.get(page_url, headers={"HX-Request": "true"}).text
