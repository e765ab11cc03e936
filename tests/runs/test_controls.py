"""The human controls on real workers: cancel a running step, pause and resume, restart the run, restart a step
with added context, inject context into a running step; runs of another workspace are not found; bad input
(a deleted agent, an output that breaks its schema, a pipeline that cannot run) ends in a status with a reason."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import delete, select

from app.agents.models import Agent
from app.audit.models import AuditEvent
from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.errors import Invalid, NotFound, Refused
from app.execution import ExecutionDeps
from app.live.bus import EventType
from app.llm.models import LlmToken
from app.llm.scripted import ChatRequest, Reply, ScriptedServer
from app.pipelines.service import save_pipeline
from app.queues import Enqueuer
from app.runs import service
from app.runs.dispatch import kick
from app.runs.views import RunFilters, RunView
from app.security.secrets import SecretsService
from tests.execution.conftest import add_agents
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant, make_tenant
from tests.runs.harness import LINEAR, PERSON, engine_workers, events_of, finished, started_run, until_run

STRUCTURED = """
id: planned
name: Planned
version: '1'
defaults: {maxRetries: 1}
agents: [{id: finn, name: Finn}]
steps:
  - id: PLAN
    agent: finn
    input: Plan {{task_description}}
    outputs: [plan]
    outputSchema:
      name: plan
      schema:
        type: object
        properties: {tasks: {type: array, items: {type: string}, minItems: 1}}
        required: [tasks]
"""


CHATTY = """
id: chatty
name: Chatty
version: '1'
defaults: {maxRetries: 0, maxTurns: 2}
agents: [{id: finn, name: Finn}]
steps:
  - {id: TALK, agent: finn, input: Talk, outputs: [talk]}
"""


SLOW = """
id: slow
name: Slow
version: '1'
defaults: {maxRetries: 0, timeoutSeconds: 1}
agents: [{id: finn, name: Finn}]
steps:
  - {id: SLOW, agent: finn, input: Wait, outputs: [waited]}
"""


class _Chatty:
    def respond(self, request: ChatRequest) -> Reply:
        return Reply(text="I would rather chat than finish.")


@pytest.fixture
async def workers(
    db: Database,
    settings: Settings,
    deps: ExecutionDeps,
    tenant: Tenant,
    gateway: GatewayServer,
    queue_redis: Redis,
) -> AsyncIterator[Enqueuer]:
    await add_agents(db, tenant.id, "finn")
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await save_pipeline(session, yaml=LINEAR, actor=PERSON, known_agents=["finn"])
        await save_pipeline(session, yaml=STRUCTURED, actor=PERSON, known_agents=["finn"])
    async with engine_workers(settings, deps) as jobs:
        yield jobs


async def _step_running(db: Database, tenant: Tenant, run_id: str, step: str) -> RunView:
    return await until_run(
        db, tenant.id, run_id, lambda v: any(s.step_id == step and s.status == "running" for s in v.steps)
    )


def _asked(llm: ScriptedServer, tenant: Tenant, text: str) -> bool:
    return any(text in r.prompt_text for r in llm.requests if r.api_key == tenant.key)


async def test_cancel_stops_the_running_step_and_revokes_its_tokens(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, workers: Enqueuer
) -> None:
    script = StepScript(delays={"TWO": 1.5})
    llm.register_key(tenant.key, script)
    run_id = await started_run(db, deps.bus, workers, tenant.id, "linear", "Count.")
    await _step_running(db, tenant, run_id, "TWO")
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await service.cancel_run(session, run_id, PERSON)
    await kick(workers, tenant.id, run_id)
    view = await until_run(db, tenant.id, run_id, lambda v: v.finished and all(s.status != "running" for s in v.steps))
    assert view.status == "cancelled" and view.reason == "Cancelled by Engine test."
    assert [(s.step_id, s.status) for s in view.steps] == [("ONE", "completed"), ("TWO", "cancelled")]
    assert "TWO" not in script.completed
    async with db.tenant_session(tenant.id) as session:
        tokens = list(await session.scalars(select(LlmToken).where(LlmToken.run_id == run_id)))
        audited = await session.scalar(select(AuditEvent.action).where(AuditEvent.action == "run.cancelled"))
    assert tokens and all(token.revoked_at is not None for token in tokens) and audited
    types = [e.type for e in await events_of(deps.bus, tenant.id, run_id)]
    assert EventType.STEP_CANCELLED in types and types[-1] is EventType.RUN_STATUS_CHANGED
    with pytest.raises(Refused):
        async with workspace_change(db, deps.bus, tenant.id) as session:
            await service.cancel_run(session, run_id, PERSON)


async def test_pause_holds_the_next_step_and_resume_carries_on(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, workers: Enqueuer
) -> None:
    llm.register_key(tenant.key, StepScript(delays={"ONE": 1.0}))
    run_id = await started_run(db, deps.bus, workers, tenant.id, "linear", "Count.")
    await _step_running(db, tenant, run_id, "ONE")
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await service.pause_run(session, run_id, PERSON)
    await kick(workers, tenant.id, run_id)
    view = await until_run(db, tenant.id, run_id, lambda v: v.steps[0].status == "completed")
    assert view.status == "paused" and [s.step_id for s in view.steps] == ["ONE"]
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await service.resume_run(session, run_id, PERSON)
    await kick(workers, tenant.id, run_id)
    view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "completed" and [s.step_id for s in view.steps] == ["ONE", "TWO", "THREE"]
    statuses = [
        e.payload["status"]
        for e in await events_of(deps.bus, tenant.id, run_id)
        if e.type is EventType.RUN_STATUS_CHANGED
    ]
    assert statuses == ["running", "paused", "running", "completed"]


async def test_inject_reaches_the_running_step_and_restarts_take_context(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, workers: Enqueuer
) -> None:
    llm.register_key(tenant.key, StepScript(delays={"ONE": 1.5}))
    run_id = await started_run(db, deps.bus, workers, tenant.id, "linear", "Count.")
    await until_run(db, tenant.id, run_id, lambda v: bool(v.steps) and v.steps[0].status == "running")
    # The step is running once its model has been asked: then the context arrives mid-step.
    await until_run(db, tenant.id, run_id, lambda v: _asked(llm, tenant, "This is step ONE"))
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await service.inject_context(session, run_id, "Count in French.", PERSON)
    await kick(workers, tenant.id, run_id)
    view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "completed"
    assert _asked(llm, tenant, "[ADDITIONAL CONTEXT] Count in French.")
    assert "[ADDITIONAL CONTEXT] Count in French." in view.steps[0].human_context

    async with workspace_change(db, deps.bus, tenant.id) as session:
        await service.restart_step(session, run_id, "TWO", "Slower, please.", PERSON)
    await kick(workers, tenant.id, run_id)
    view = await until_run(db, tenant.id, run_id, lambda v: v.finished and len(v.steps) == 5)
    assert view.status == "completed"
    assert [(s.step_id, s.via) for s in view.steps[3:]] == [("TWO", "restart"), ("THREE", "onComplete")]
    assert "[HUMAN RESTART] Slower, please." in view.steps[3].input

    async with workspace_change(db, deps.bus, tenant.id) as session:
        again = await service.restart_run(session, run_id, PERSON)
    await kick(workers, tenant.id, again.id)
    second = await until_run(db, tenant.id, again.id, finished)
    assert (second.status, second.restarted_from, second.task) == ("completed", run_id, "Count.")
    assert second.pipeline_version == view.pipeline_version
    async with db.tenant_session(tenant.id) as session:
        listed = await service.list_runs(session, RunFilters(pipeline_id="linear"))
        page = await service.list_runs(session, RunFilters(pipeline_id="linear", before=listed[0].id))
        done = await service.list_runs(session, RunFilters(status="completed", limit=1))
    assert [r.id for r in listed] == [again.id, run_id] and [r.id for r in page] == [run_id]
    assert listed[1].steps_done == 5 and listed[1].current_step == "THREE" and listed[1].cost > 0
    assert len(done) == 1


async def test_bad_input_ends_in_a_status_with_a_reason(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, workers: Enqueuer
) -> None:
    llm.register_key(tenant.key, StepScript(structured={"PLAN": {"tasks": []}}))
    run_id = await started_run(db, deps.bus, workers, tenant.id, "planned", "Plan a party.")
    view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "failed" and "does not match its JSON Schema" in view.reason
    assert view.steps[0].attempt == 2 and "tasks" in view.steps[0].error

    # A model that never calls complete: the runtime stops at maxTurns and the step fails with why.
    llm.register_key(tenant.key, _Chatty())
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await save_pipeline(session, yaml=CHATTY, actor=PERSON, known_agents=["finn"])
    run_id = await started_run(db, deps.bus, workers, tenant.id, "chatty", "Talk.")
    view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "failed" and "without calling complete" in view.reason, view.reason

    # A step past its timeout: stopped, failed with why.
    llm.register_key(tenant.key, StepScript(delays={"SLOW": 1.8}))
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await save_pipeline(session, yaml=SLOW, actor=PERSON, known_agents=["finn"])
    run_id = await started_run(db, deps.bus, workers, tenant.id, "slow", "Wait.")
    view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "failed" and "timeout" in view.reason, view.reason

    # The agent deleted after the run started: the step fails with that reason (no sandbox), the run too.
    async with db.tenant_session(tenant.id) as session:
        await session.execute(delete(Agent).where(Agent.id == "finn"))
    async with workspace_change(db, deps.bus, tenant.id) as session:
        with pytest.raises(Invalid, match="finn"):  # refused at the start, listing the problem
            await service.start_run(session, pipeline_id="linear", task="Count.", actor=PERSON)
        with pytest.raises(Invalid):
            await service.start_run(session, pipeline_id="linear", task="  ", actor=PERSON)
    await add_agents(db, tenant.id, "finn")
    run_id = await started_run(db, deps.bus, workers, tenant.id, "linear", "Count.")
    async with db.tenant_session(tenant.id) as session:
        await session.execute(delete(Agent).where(Agent.id == "finn"))
    view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "failed" and "no longer exists" in view.reason


async def test_another_workspace_cannot_see_or_touch_a_run(
    db: Database,
    settings: Settings,
    secrets_service: SecretsService,
    deps: ExecutionDeps,
    llm: ScriptedServer,
    tenant: Tenant,
    workers: Enqueuer,
) -> None:
    llm.register_key(tenant.key, StepScript())
    run_id = await started_run(db, deps.bus, workers, tenant.id, "linear", "Count.")
    other = await make_tenant(db, settings, secrets_service, llm.url, "other")
    async with db.tenant_session(other.id) as session:
        with pytest.raises(NotFound):
            await service.get_run(session, run_id)
        with pytest.raises(NotFound):
            await service.cancel_run(session, run_id, PERSON)
        with pytest.raises(NotFound):
            await service.inject_context(session, run_id, "hi", PERSON)
        assert await service.list_runs(session, RunFilters()) == []
    await until_run(db, tenant.id, run_id, finished)
