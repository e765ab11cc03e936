"""The engine's decisions without workers: jobs recorded instead of enqueued, steps executed by hand."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from app.audit.unit_of_work import workspace_change
from app.db import Database
from app.execution import ExecutionDeps
from app.live.bus import EventType
from app.llm.scripted import ScriptedServer
from app.pipelines.service import save_pipeline
from app.runs import service
from app.runs.engine import Engine
from app.runs.models import RunStep
from app.runs.state import advance
from tests.execution.conftest import add_agents
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.runs.harness import LINEAR, PERSON, events_of


async def test_a_step_skipped_while_paused_runs_after_resume_and_kicks_are_idempotent(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer
) -> None:
    await add_agents(db, tenant.id, "finn")
    llm.register_key(tenant.key, StepScript())
    queued: list[tuple[str, int, int]] = []

    async def record(workspace_id: str, run_id: str, visit_id: str, attempt: int, generation: int) -> None:
        queued.append((visit_id, attempt, generation))

    engine = Engine(deps, record, worker_id="by-hand")
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await save_pipeline(session, yaml=LINEAR, actor=PERSON, known_agents=["finn"])
        run = await service.start_run(session, pipeline_id="linear", task="Count.", actor=PERSON)
    await engine.advance(tenant.id, run.id)
    assert len(queued) == 1
    visit_id, attempt, generation = queued[0]
    assert (attempt, generation) == (1, 0)
    # Paused before its job ran: the job leaves the step queued.
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await service.pause_run(session, run.id, PERSON)
    await engine.advance(tenant.id, run.id)
    assert await engine.execute(tenant.id, run.id, visit_id, 1) == "skipped"
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await service.resume_run(session, run.id, PERSON)
    await engine.advance(tenant.id, run.id)
    # Queued again under a new job id (the first one is spent).
    assert queued[-1] == (visit_id, 1, 1)
    assert await engine.execute(tenant.id, run.id, visit_id, 1) == "completed"
    assert await engine.execute(tenant.id, run.id, visit_id, 1) == "skipped"  # a duplicate job: nothing
    # The store routed it at once: TWO is queued; a kick now changes nothing but a re-enqueue.
    async with db.tenant_session(tenant.id) as session:
        fx = await advance(session, run.id)
        view = await service.get_run(session, run.id)
    assert [(s.step_id, s.status) for s in view.steps] == [("ONE", "completed"), ("TWO", "queued")]
    assert [event for event, _ in fx.events] == [EventType.STEP_QUEUED] and len(fx.enqueue) == 1
    statuses = [
        e.payload["status"]
        for e in await events_of(deps.bus, tenant.id, run.id)
        if e.type is EventType.RUN_STATUS_CHANGED
    ]
    assert statuses == ["running", "paused", "running"]


async def test_the_reaper_hands_an_expired_step_over_and_fails_one_that_keeps_losing_its_worker(
    db: Database, deps: ExecutionDeps, tenant: Tenant
) -> None:
    await add_agents(db, tenant.id, "finn")
    queued: list[tuple[str, int, int]] = []

    async def record(workspace_id: str, run_id: str, visit_id: str, attempt: int, generation: int) -> None:
        queued.append((visit_id, attempt, generation))

    engine = Engine(deps, record, worker_id="reaper-test")
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await save_pipeline(session, yaml=LINEAR, actor=PERSON, known_agents=["finn"])
        run = await service.start_run(session, pipeline_id="linear", task="Count.", actor=PERSON)
    await engine.advance(tenant.id, run.id)
    visit_id = queued[-1][0]

    async def dies_while_running() -> None:
        async with db.tenant_session(tenant.id) as session:
            await session.execute(
                update(RunStep)
                .where(RunStep.id == visit_id)
                .values(
                    status="running",
                    lease_owner="dead-worker",
                    lease_expires_at=datetime.now(UTC) - timedelta(seconds=1),
                )
            )

    for takeover in (1, 2):
        await dies_while_running()
        assert await engine.reap(tenant.id) == 1
        assert queued[-1] == (visit_id, 1, takeover)  # same attempt, a new job id
    await dies_while_running()
    assert await engine.reap(tenant.id) == 1
    async with db.tenant_session(tenant.id) as session:
        view = await service.get_run(session, run.id)
    step = view.steps[0]
    # The third loss failed the attempt, and the retry rule queued the next one with the reason.
    assert (step.status, step.attempt) == ("queued", 2)
    assert step.attempts[0]["error"] == "The step's worker stopped 3 times while running it."
    assert queued[-1][:2] == (visit_id, 2)
    events = await events_of(deps.bus, tenant.id, run.id)
    assert [e.payload.get("via") for e in events if e.type is EventType.STEP_QUEUED] == [
        "start", "lease expired", "lease expired"
    ]  # fmt: skip
    assert any(e.type is EventType.STEP_RETRYING for e in events)


async def test_a_queued_step_whose_job_was_lost_is_enqueued_again(
    db: Database, deps: ExecutionDeps, tenant: Tenant
) -> None:
    await add_agents(db, tenant.id, "finn")
    queued: list[tuple[str, int, int]] = []

    async def record(workspace_id: str, run_id: str, visit_id: str, attempt: int, generation: int) -> None:
        queued.append((visit_id, attempt, generation))

    engine = Engine(deps, record, worker_id="stale-test")
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await save_pipeline(session, yaml=LINEAR, actor=PERSON, known_agents=["finn"])
        run = await service.start_run(session, pipeline_id="linear", task="Count.", actor=PERSON)
    await engine.advance(tenant.id, run.id)
    assert await engine.reap(tenant.id) == 0  # queued a moment ago: its job is surely still there
    async with db.tenant_session(tenant.id) as session:
        await session.execute(
            update(RunStep).where(RunStep.run_id == run.id).values(queued_at=datetime.now(UTC) - timedelta(minutes=11))
        )
    assert await engine.reap(tenant.id) == 1
    assert queued[-1] == (queued[0][0], 1, 1)
