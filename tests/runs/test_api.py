"""The runs API does what the pages do (no worker: runs stay queued): start, list with filters and cursors, get,
the controls with their refusals, the events as a cursor list; viewers read only; another workspace's runs 404."""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.db import Database
from app.live.bus import EventBus, EventType, Topic
from app.onboarding.first_run import ensure_starter
from tests.agents.helpers import audit_of, workspace_changes
from tests.api.helpers import Team, api_client, error_of, make_team
from tests.helpers import person
from tests.runs.stack import quiet_settings


@pytest.fixture
def quiet(settings: Settings) -> Iterator[Settings]:
    """The settings with the engine's jobs (and the run events) on a Redis database of their own."""
    with quiet_settings(settings) as quieter:
        yield quieter


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    team = await make_team(db, settings, f"runapi-{secrets.token_hex(2)}")
    async with workspace_changes(db, settings, team.workspace.id) as session:
        await ensure_starter(session, "bugfix", person(team.owner))
    return team


def base(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace.slug}/runs"


async def test_start_list_get_and_control(quiet: Settings, db: Database, team: Team) -> None:
    with api_client(quiet, team.cookies["member"]) as client:
        started = client.post(base(team), json={"pipeline": "bugfix", "task": "Fix the login"})
        assert started.status_code == 201, started.text
        run = started.json()
        assert (run["status"], run["pipeline_version"], run["steps"]) == ("queued", 1, [])
        second = client.post(base(team), json={"pipeline": "bugfix", "task": "Fix the logout", "version": 1}).json()
        listed = client.get(base(team)).json()
        assert [r["id"] for r in listed["data"]] == [second["id"], run["id"]] and listed["next_cursor"] is None
        page = client.get(base(team), params={"limit": 1}).json()
        assert [r["id"] for r in page["data"]] == [second["id"]]
        older = client.get(base(team), params={"limit": 1, "cursor": page["next_cursor"]}).json()
        assert [r["id"] for r in older["data"]] == [run["id"]] and older["next_cursor"] is None

        paused = client.post(f"{base(team)}/{run['id']}/pause")
        assert paused.status_code == 200 and paused.json()["status"] == "paused"
        refused = client.post(f"{base(team)}/{run['id']}/pause")
        assert refused.status_code == 422 and "Only a queued or running run" in error_of(refused)["message"]
        assert client.post(f"{base(team)}/{run['id']}/resume").json()["status"] == "queued"
        restarted = client.post(f"{base(team)}/{run['id']}/steps/FIX/restart", json={"context": "Look at cookies."})
        assert restarted.status_code == 200
        fix = [s for s in restarted.json()["steps"] if s["step_id"] == "FIX"]
        assert fix and "Look at cookies." in fix[0]["human_context"]
        unknown_step = client.post(f"{base(team)}/{run['id']}/steps/NOPE/restart", json={})
        assert unknown_step.status_code == 422
        injected = client.post(f"{base(team)}/{run['id']}/inject", json={"text": "Also the API."})
        assert injected.status_code == 200
        cancelled = client.post(f"{base(team)}/{run['id']}/cancel")
        assert cancelled.json()["status"] == "cancelled" and cancelled.json()["reason"]
        again = client.post(f"{base(team)}/{run['id']}/restart")
        assert again.status_code == 201 and again.json()["id"] not in (run["id"], second["id"])
        assert client.get(base(team), params={"status": "cancelled"}).json()["data"][0]["id"] == run["id"]
        assert client.get(base(team), params={"status": "bogus"}).status_code == 422
        assert client.get(base(team), params={"pipeline": "other"}).json()["data"] == []
        assert client.get(f"{base(team)}/nope").status_code == 404
        empty = client.post(base(team), json={"pipeline": "bugfix", "task": " "})
        assert empty.status_code == 422 and error_of(empty)["details"]["errors"][0]["field"] == "task"
        assert client.post(base(team), json={"pipeline": "nope", "task": "x"}).status_code == 404
    actions = [action for action, _, _ in await audit_of(db, team.workspace.id, "run.")]
    assert actions.count("run.started") == 2 and "run.cancelled" in actions and "run.restarted" in actions


async def test_events_are_a_cursor_list(quiet: Settings, db: Database, team: Team) -> None:
    redis = Redis.from_url(quiet.redis_url)
    bus = EventBus(redis)
    try:
        with (
            api_client(quiet, team.cookies["viewer"]) as viewer,
            api_client(quiet, team.cookies["member"]) as member,
        ):
            run = member.post(base(team), json={"pipeline": "bugfix", "task": "Fix it"}).json()
            topic = Topic.run(run["id"])
            await bus.publish(team.workspace.id, topic, EventType.STEP_STARTED, {"stepId": "REPRODUCE"})
            await bus.publish(
                team.workspace.id, topic, EventType.STEP_OUTPUT, {"stepId": "REPRODUCE", "chunk": "<b>hi</b>"}
            )
            first = viewer.get(f"{base(team)}/{run['id']}/events").json()
            assert [e["type"] for e in first["data"]] == ["STEP_STARTED", "STEP_OUTPUT"]
            assert first["data"][1]["payload"]["chunk"] == "<b>hi</b>" and first["finished"] is False
            began = time.monotonic()
            waited = viewer.get(f"{base(team)}/{run['id']}/events", params={"since": first["cursor"], "wait": 1}).json()
            assert waited["data"] == [] and waited["cursor"] == first["cursor"] and time.monotonic() - began >= 0.9
            await bus.publish(team.workspace.id, topic, EventType.STEP_COMPLETE, {"stepId": "REPRODUCE"})
            more = viewer.get(f"{base(team)}/{run['id']}/events", params={"since": first["cursor"]}).json()
            assert [e["type"] for e in more["data"]] == ["STEP_COMPLETE"]
            bad = viewer.get(f"{base(team)}/{run['id']}/events", params={"since": "yesterday"})
            assert bad.status_code == 422
            member.post(f"{base(team)}/{run['id']}/cancel")
            done = viewer.get(f"{base(team)}/{run['id']}/events", params={"since": more["cursor"], "wait": 5}).json()
            assert done["finished"] is True and done["status"] == "cancelled"
    finally:
        await redis.aclose()


async def test_viewers_read_only_and_other_workspaces_are_not_found(
    settings: Settings, quiet: Settings, db: Database, team: Team
) -> None:
    with api_client(quiet, team.cookies["member"]) as client:
        run = client.post(base(team), json={"pipeline": "bugfix", "task": "Fix it"}).json()
    with api_client(quiet, team.cookies["viewer"]) as client:
        assert client.get(f"{base(team)}/{run['id']}").status_code == 200
        assert client.post(base(team), json={"pipeline": "bugfix", "task": "Mine"}).status_code == 403
        for action in ("cancel", "pause", "resume", "restart"):
            assert client.post(f"{base(team)}/{run['id']}/{action}").status_code == 403, action
        assert client.post(f"{base(team)}/{run['id']}/inject", json={"text": "x"}).status_code == 403
        assert client.post(f"{base(team)}/{run['id']}/steps/FIX/restart", json={}).status_code == 403
    other = await make_team(db, settings, f"runapi2-{secrets.token_hex(2)}")
    with api_client(quiet, other.cookies["owner"]) as client:
        there = f"/api/v1/workspaces/{other.workspace.slug}/runs/{run['id']}"
        assert client.get(there).status_code == 404
        assert client.get(f"{there}/events").status_code == 404
        assert client.post(f"{there}/cancel").status_code == 404
        assert client.get(f"{base(team)}/{run['id']}").status_code == 404
    with api_client(quiet, team.cookies["member"]) as client:
        assert client.get(base(team)).json()["data"][0]["status"] == "queued"
