"""The run pages over HTTP (no worker: runs stay queued, which is enough for the pages and the controls): start
from the runs list and from a pipeline's page (sent twice, started once), the list's filters and pages, a run's
page, the controls as POSTs with their refusals; viewers read but cannot start or control; another workspace's
runs are not found."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.onboarding.first_run import ensure_starter
from app.runs.models import Run, RunLoopItem, RunStep
from app.tenants.models import Workspace
from tests.agents.helpers import audit_of, workspace_changes
from tests.helpers import csrf_of, http_client, log_in, person, workspace_with
from tests.runs.stack import quiet_settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with its engine jobs on a Redis database of their own (``quiet_settings``)."""
    with quiet_settings(settings) as quiet, http_client(create_app(quiet)) as test_client:
        yield test_client


@dataclass
class Team:
    workspace: Workspace
    owner: User
    member: User
    viewer: User

    @property
    def url(self) -> str:
        return f"/w/{self.workspace.slug}/runs"


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    workspace, (owner, member, viewer) = await workspace_with(
        db, f"runpages-{secrets.token_hex(3)}", ["member", "viewer"]
    )
    async with workspace_changes(db, settings, workspace.id) as session:
        await ensure_starter(session, "bugfix", person(owner))
    return Team(workspace, owner, member, viewer)


async def runs_in(db: Database, workspace_id: str) -> list[Run]:
    async with db.tenant_session(workspace_id) as session:
        return list(await session.scalars(select(Run).order_by(Run.created_at)))


def form_token(page: str) -> str:
    found = re.search(r'name="form_id" value="([^"]+)"', page)
    assert found, "the start form carries its idempotency token"
    return found.group(1)


async def test_a_member_starts_a_run_once_and_controls_it(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    page = client.get(f"/w/{team.workspace.slug}/pipelines/bugfix")
    assert page.status_code == 200 and 'id="start-run"' in page.text
    form = {"csrf_token": csrf_of(page.text), "form_id": form_token(page.text), "pipeline": "bugfix"}
    form["task"] = "The <b>login</b> button does nothing"
    first = client.post(team.url, data=form)
    assert first.status_code == 303, first.text
    again = client.post(team.url, data=form)  # a double submit
    assert again.status_code == 303 and again.headers["location"] == first.headers["location"]
    [run] = await runs_in(db, team.workspace.id)
    assert first.headers["location"] == f"{team.url}/{run.id}" and run.status == "queued"

    detail = client.get(f"{team.url}/{run.id}")
    assert detail.status_code == 200
    assert "The &lt;b&gt;login&lt;/b&gt; button does nothing" in detail.text  # escaped, never markup
    assert f'sse-connect="{team.url}/{run.id}/events?since=0"' in detail.text
    assert 'id="cancel-run"' in detail.text and 'data-confirm="Cancel this run?' in detail.text
    listing = client.get(team.url)
    assert f'data-run="{run.id}"' in listing.text

    token = csrf_of(detail.text)
    response = client.post(f"{team.url}/{run.id}/pause", data={"csrf_token": token})
    assert response.status_code == 303
    assert (await runs_in(db, team.workspace.id))[0].status == "paused"
    response = client.post(f"{team.url}/{run.id}/pause", data={"csrf_token": token})  # refused: already paused
    assert response.status_code == 303
    assert "Only a queued or running run can be paused" in client.get(response.headers["location"]).text
    client.post(f"{team.url}/{run.id}/resume", data={"csrf_token": token})
    assert (await runs_in(db, team.workspace.id))[0].status == "queued"
    response = client.post(
        f"{team.url}/{run.id}/restart-step", data={"csrf_token": token, "step": "FIX", "context": "Try the form."}
    )
    assert response.status_code == 303
    async with db.tenant_session(team.workspace.id) as session:
        visit = await session.scalar(select(RunStep).where(RunStep.run_id == run.id, RunStep.step_id == "FIX"))
        assert visit is not None and "Try the form." in visit.human_context
    step_page = client.get(f"{team.url}/{run.id}/steps/{visit.id}")
    assert step_page.status_code == 200 and "[HUMAN RESTART] Try the form." in step_page.text
    assert 'name="step" value="FIX"' in step_page.text and 'id="restart-this-step-button"' in step_page.text
    response = client.post(f"{team.url}/{run.id}/inject", data={"csrf_token": token, "text": "Also check the API."})
    assert response.status_code == 303
    client.post(f"{team.url}/{run.id}/cancel", data={"csrf_token": token})
    assert (await runs_in(db, team.workspace.id))[0].status == "cancelled"
    response = client.post(f"{team.url}/{run.id}/restart", data={"csrf_token": token})
    runs = await runs_in(db, team.workspace.id)
    assert len(runs) == 2 and runs[1].restarted_from == run.id
    assert response.headers["location"] == f"{team.url}/{runs[1].id}"
    actions = [action for action, _, _ in await audit_of(db, team.workspace.id, "run.")]
    assert actions == [
        "run.started",
        "run.paused",
        "run.resumed",
        "run.step_restarted",
        "run.context_injected",
        "run.cancelled",
        "run.restarted",
    ]


async def test_a_refused_start_shows_why_and_starts_nothing(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    page = client.get(team.url)
    token = csrf_of(page.text)
    response = client.post(team.url, data={"csrf_token": token, "pipeline": "bugfix", "task": "   "})
    assert response.status_code == 422 and "Say what the run should do." in response.text
    response = client.post(team.url, data={"csrf_token": token, "pipeline": "nope", "task": "x"})
    assert response.status_code == 422 and "Choose a pipeline of this workspace." in response.text
    assert await runs_in(db, team.workspace.id) == []


async def test_filters_and_pages(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    token = csrf_of(client.get(team.url).text)
    for index in range(27):
        client.post(team.url, data={"csrf_token": token, "pipeline": "bugfix", "task": f"task {index}"})
    runs = await runs_in(db, team.workspace.id)
    client.post(f"{team.url}/{runs[0].id}/cancel", data={"csrf_token": token})
    first = client.get(team.url)
    assert first.text.count("data-run=") == 25 and 'id="older-runs"' in first.text
    older = re.search(r'href="([^"]+)" id="older-runs"', first.text)
    assert older is not None
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert second.text.count("data-run=") == 2 and f'data-run="{runs[0].id}"' in second.text
    cancelled = client.get(f"{team.url}?status=cancelled")
    assert cancelled.text.count("data-run=") == 1
    assert client.get(f"{team.url}?status=bogus").status_code == 200
    assert client.get(f"{team.url}?pipeline=other").text.count("data-run=") == 0
    assert client.get(f"{team.url}?before=nope").status_code == 200


async def test_viewers_cannot_start_or_control_runs(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    token = csrf_of(client.get(team.url).text)
    client.post(team.url, data={"csrf_token": token, "pipeline": "bugfix", "task": "Fix it"})
    [run] = await runs_in(db, team.workspace.id)
    client.cookies.clear()
    log_in(client, team.viewer.email)
    page = client.get(f"{team.url}/{run.id}")
    assert page.status_code == 200 and 'id="cancel-run"' not in page.text and 'id="inject-form"' not in page.text
    assert 'id="start-run"' not in client.get(team.url).text
    token = csrf_of(page.text)
    for action in ("cancel", "pause", "resume", "restart", "restart-step", "inject"):
        response = client.post(f"{team.url}/{run.id}/{action}", data={"csrf_token": token, "step": "FIX", "text": "x"})
        assert response.status_code == 403, action
    response = client.post(team.url, data={"csrf_token": token, "pipeline": "bugfix", "task": "Mine"})
    assert response.status_code == 403
    runs = await runs_in(db, team.workspace.id)
    assert [(r.id, r.status) for r in runs] == [(run.id, "queued")]


async def test_another_workspaces_runs_are_not_found(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    token = csrf_of(client.get(team.url).text)
    client.post(team.url, data={"csrf_token": token, "pipeline": "bugfix", "task": "Fix it"})
    [run] = await runs_in(db, team.workspace.id)
    other, (stranger, _) = await workspace_with(db, f"runother-{secrets.token_hex(3)}", ["member"])
    client.cookies.clear()
    log_in(client, stranger.email)
    there = f"/w/{other.slug}/runs/{run.id}"
    assert client.get(there).status_code == 404
    assert client.get(f"{there}/events").status_code == 404
    token = csrf_of(client.get(f"/w/{other.slug}/runs").text)
    assert client.post(f"{there}/cancel", data={"csrf_token": token}).status_code == 404
    assert client.get(f"{team.url}/{run.id}").status_code in (403, 404)
    async with db.tenant_session(team.workspace.id) as session:
        assert await session.scalar(select(func.count()).select_from(Run)) == 1
        assert (await session.get(Run, run.id)).status == "queued"  # type: ignore[union-attr]


def test_the_live_log_escapes_agent_output() -> None:
    """Text, thinking, tool arguments and results are the agent's: shown as text, never as markup."""
    from datetime import UTC, datetime

    from app.live.bus import Event, EventType, Topic
    from app.runs.pages.detail import render_stream_event

    attack = '<img src=x onerror="alert(1)"><script>alert(2)</script>'

    def shown(kind: EventType, payload: dict[str, object]) -> str:
        event = Event(type=kind, workspace_id="w" * 8, topic=Topic.run("r1"), payload=payload, at=datetime.now(UTC))
        return render_stream_event(event)

    for kind, payload in [
        (EventType.STEP_OUTPUT, {"stepId": "A", "chunk": attack}),
        (EventType.STEP_THINKING, {"stepId": "A", "chunk": attack}),
        (EventType.TOOL_CALL_START, {"stepId": "A", "toolName": attack, "args": {"path": attack}}),
        (EventType.TOOL_CALL_END, {"stepId": attack, "toolName": "bash", "result": attack, "isError": True}),
        (EventType.STEP_FAILED, {"stepId": "A", "error": attack}),
        (EventType.FILE_CHANGED, {"stepId": "A", "path": attack, "change": "created"}),
    ]:
        html = shown(kind, payload)
        assert "<script>" not in html and "<img" not in html, (kind, html)
        assert "&lt;script&gt;" in html or "&#34;&lt;script&gt;" in html or "\\u003cscript" in html, (kind, html)
    long = shown(EventType.TOOL_CALL_END, {"stepId": "A", "toolName": "read", "result": "x" * 10_000})
    assert "more characters" in long and len(long) < 6_000
    # A status change reads as a sentence; the run's end is said once, by its own event.
    assert "The run is paused: lunch" in shown(EventType.RUN_STATUS_CHANGED, {"status": "paused", "reason": "lunch"})
    ended = shown(EventType.RUN_STATUS_CHANGED, {"status": "failed", "reason": "Step A failed"})
    assert "Step A failed" not in ended and "The run failed: Step A failed" in shown(
        EventType.RUN_FAILED, {"error": "Step A failed"}
    )


async def test_a_runs_loop_items_show_with_their_status(client: TestClient, db: Database, team: Team) -> None:
    log_in(client, team.member.email)
    token = csrf_of(client.get(team.url).text)
    client.post(team.url, data={"csrf_token": token, "pipeline": "bugfix", "task": "Fix it"})
    [run] = await runs_in(db, team.workspace.id)
    async with db.tenant_session(team.workspace.id) as session:
        for index, (data, status) in enumerate(
            [('{"title": "<b>One</b>"}', "completed"), ('{"title": "Two"}', "running")]
        ):
            session.add(
                RunLoopItem(run_id=run.id, loop_step="FIX", index=index, item_id=f"i{index}", data=data, status=status)
            )
        await session.commit()
    page = client.get(f"{team.url}/{run.id}")
    assert "<code>FIX</code>: 1 of 2 done" in page.text
    assert "&lt;b&gt;One&lt;/b&gt;" in page.text and 'data-loop-item="1"' in page.text
