"""The engineering starter pipeline end to end: real arq workers, the process runner, the gateway and the
scripted provider. Through a loop of two tasks, a CHANGES_REQUESTED branch, a failed step retried, to the end;
the events arrive in order on the run's stream; the files are snapshotted per step."""

from __future__ import annotations

from collections import Counter

from redis.asyncio import Redis

from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.live.bus import EventType
from app.llm.scripted import ScriptedServer
from app.pipelines.service import add_starter
from app.runs.files import run_files, step_diff
from tests.execution.conftest import add_agents
from tests.execution.scripts import TASKS, StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.runs.harness import PERSON, engine_workers, events_of, finished, started_run, until_run

TEAM = ("product-owner", "architect", "ux-designer", "software-engineer", "test-engineer", "sre")


async def add_engineering(db: Database, deps: ExecutionDeps, tenant: Tenant) -> None:
    await add_agents(db, tenant.id, *TEAM)
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await add_starter(session, "engineering", PERSON, TEAM)


async def test_the_engineering_pipeline_loops_branches_retries_and_completes(
    db: Database,
    settings: Settings,
    deps: ExecutionDeps,
    llm: ScriptedServer,
    tenant: Tenant,
    gateway: GatewayServer,
    queue_redis: Redis,
) -> None:
    await add_engineering(db, deps, tenant)
    script = StepScript(
        values={"task_list_json": TASKS},
        sequences={"review_verdict": ["CHANGES_REQUESTED", "APPROVED"]},
        failures={"UX": 1},
    )
    llm.register_key(tenant.key, script)
    async with engine_workers(settings, deps) as jobs:
        run_id = await started_run(db, deps.bus, jobs, tenant.id, "engineering", "Add a health endpoint.")
        view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "completed", (view.reason, [(s.step_id, s.status, s.error) for s in view.steps])
    visits = [(s.step_id, s.loop_item, s.attempt) for s in view.steps]
    assert visits == [
        ("SPEC", None, 1),
        ("DESIGN", None, 1),
        ("UX", None, 2),  # failed once on purpose, retried with the error in its context
        ("IMPLEMENT", 0, 1),
        ("REVIEW", None, 1),  # CHANGES_REQUESTED: back to IMPLEMENT, same item
        ("IMPLEMENT", 0, 1),
        ("REVIEW", None, 1),
        ("TEST", None, 1),  # PASS: continueLoop, the next item
        ("IMPLEMENT", 1, 1),
        ("REVIEW", None, 1),
        ("TEST", None, 1),
        ("DEPLOY", None, 1),  # onAllComplete
    ]
    assert all(s.status == "completed" for s in view.steps)
    ux = view.steps[2]
    assert ux.attempts[0]["status"] == "failed" and ux.attempts[0]["error"] == "UX broke on purpose"
    assert "[RETRY 1/2] Previous attempt failed: UX broke on purpose" in ux.human_context
    assert "[RETRY 1/2]" in ux.input
    # The loop's items, and what the second IMPLEMENT saw of the review.
    assert [(i.index, i.status) for i in view.loop_items] == [(0, "completed"), (1, "completed")]
    assert "Write the docs" in view.steps[8].input and "Add the endpoint" in view.steps[8].input
    assert view.outputs["deploy_status"] == "DEPLOYED" and view.outputs["review_verdict"] == "APPROVED"
    assert view.cost > 0 and view.input_tokens > 0 and all(s.cost > 0 for s in view.steps)
    assert all(s.model == "scripted/coder" for s in view.steps)

    events = await events_of(deps.bus, tenant.id, run_id)
    types = [event.type for event in events]
    assert types[0] is EventType.RUN_CREATED and types[-1] is EventType.RUN_STATUS_CHANGED
    assert types.count(EventType.RUN_COMPLETE) == 1 and types.count(EventType.STEP_COMPLETE) == 12
    assert types.count(EventType.STEP_FAILED) == 1 and types.count(EventType.STEP_RETRYING) == 1
    assert types.count(EventType.LOOP_ITEM_COMPLETE) == 2
    assert types.index(EventType.STEP_FAILED) < types.index(EventType.STEP_RETRYING)
    # Per visit and attempt: queued (or retrying), started, then its end, in that order.
    for step in view.steps:
        mine = [e.type for e in events if e.payload.get("visitId") == step.id and e.type in _LIFECYCLE]
        assert mine[0] in (EventType.STEP_QUEUED,) and mine[-1] is EventType.STEP_COMPLETE, (step.step_id, mine)
        assert mine.index(EventType.STEP_STARTED) < mine.index(EventType.STEP_COMPLETE)
    assert Counter(e.payload["visitId"] for e in events if e.type is EventType.STEP_COMPLETE).most_common(1)[0][1] == 1
    # Relayed tool calls carry the run and the step.
    tool = next(e for e in events if e.type is EventType.TOOL_CALL_START)
    assert tool.payload["runId"] == run_id and tool.payload["toolName"] == "write"
    notify = next(e for e in events if e.type is EventType.AGENT_MESSAGE)
    assert notify.payload["to"] == "product-owner"
    status = [e.payload["status"] for e in events if e.type is EventType.RUN_STATUS_CHANGED]
    assert status == ["running", "completed"]

    # Files: every step's note, and a diff per step snapshot.
    names = {f.path for f in run_files(deps.files_root, tenant.id, run_id)}
    assert {"SPEC.md", "DESIGN.md", "IMPLEMENT.md", "DEPLOY.md"} <= names
    spec = view.steps[0]
    assert spec.commit is not None
    diff = step_diff(deps.files_root, tenant.id, run_id, spec.commit)
    assert "+++ b/SPEC.md" in diff and "+SPEC" in diff


_LIFECYCLE = {EventType.STEP_QUEUED, EventType.STEP_STARTED, EventType.STEP_COMPLETE, EventType.STEP_FAILED}
