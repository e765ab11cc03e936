"""execute_agent_step end to end: the scripted provider behind the real gateway, the process runner, the bus."""

from __future__ import annotations

from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps, StepRequest, execute_agent_step
from app.live.bus import EventType, Topic
from app.llm.scripted import ScriptedServer
from app.llm.tokens import GatewayTokens
from app.sandbox.step import StepEvent
from app.security.secrets import SecretsService
from tests.execution.conftest import MODEL, add_agents
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant


def _request(tenant: Tenant, **fields: object) -> StepRequest:
    values: dict[str, object] = {
        "workspace_id": tenant.id,
        "scope_id": "run-exec",
        "step_id": "sr-exec-1",
        "agent_id": "finn",
        "input": "Write the notes.",
        "step_name": "SPEC",
        "pipeline_name": "Engineering",
        "outputs": ("spec", "verdict"),
        "routing": {"verdict": ("APPROVED", "CHANGES_REQUESTED")},
        "topic": Topic.run("run-exec"),
        "event_base": {"runId": "run-exec", "stepId": "SPEC"},
        "workdir_name": "work",
    }
    values.update(fields)
    return StepRequest(**values)  # type: ignore[arg-type]


async def test_a_step_runs_through_the_gateway_relays_its_events_and_revokes_its_token(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer
) -> None:
    await add_agents(db, tenant.id, "finn")
    llm.register_key(tenant.key, StepScript())
    seen: list[StepEvent] = []

    async def collect(event: StepEvent) -> None:
        seen.append(event)

    outcome = await execute_agent_step(deps, _request(tenant), on_event=collect)
    assert outcome.status == "complete", outcome.error
    # The demo convention: the first routing value, a placeholder for the rest.
    assert outcome.outputs["verdict"] == "APPROVED" and "spec" in outcome.outputs
    assert (outcome.model, outcome.model_source) == (MODEL, "workspace agent")
    assert outcome.workdir is not None and (outcome.workdir / "SPEC.md").read_text() == "SPEC"
    assert outcome.workdir.parent.name == "run-exec" and outcome.workdir.parent.parent.name == tenant.id
    assert outcome.cost > 0 and outcome.usage.input_tokens > 0
    assert "SPEC.md" in outcome.files_changed
    # The prompt carried the step convention (what the demo model reads).
    prompts = [r.prompt_text for r in llm.requests if r.api_key == tenant.key]
    assert any("Routing values for verdict: APPROVED, CHANGES_REQUESTED" in p for p in prompts)
    # Relayed with DjinnBot's names, in the order the runtime said things.
    events = await deps.bus.read_since(tenant.id, [Topic.run("run-exec")])
    types = [event.type for _, _, event in events]
    assert types[:3] == [EventType.TOOL_CALL_START, EventType.TOOL_CALL_END, EventType.FILE_CHANGED]
    start = next(event for _, _, event in events if event.type is EventType.TOOL_CALL_START)
    assert start.payload["toolName"] == "write" and start.payload["runId"] == "run-exec"
    assert {e.type for e in seen} >= {"tool_start", "tool_end", "result"}
    # The token is revoked: a second mint for the same step id is a new token, the old one is gone.
    async with deps.db.tenant_session(tenant.id) as session:
        from sqlalchemy import select

        from app.llm.models import LlmToken

        rows = list(await session.scalars(select(LlmToken).where(LlmToken.step_id == "sr-exec-1")))
    assert rows and all(row.revoked_at is not None for row in rows)


async def test_a_deleted_agent_ends_the_step_with_a_reason_and_mints_nothing(
    db: Database, deps: ExecutionDeps, tenant: Tenant
) -> None:
    outcome = await execute_agent_step(deps, _request(tenant, agent_id="ghost", step_id="sr-ghost"))
    assert outcome.status == "error" and outcome.error is not None and "ghost" in outcome.error
    async with deps.db.tenant_session(tenant.id) as session:
        from sqlalchemy import func, select

        from app.llm.models import LlmToken

        count = await session.scalar(select(func.count()).select_from(LlmToken).where(LlmToken.step_id == "sr-ghost"))
    assert count == 0


async def test_the_pipeline_model_wins_over_the_agent_and_a_failing_step_says_why(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer
) -> None:
    from app.pipelines import load_valid_pipeline

    await add_agents(db, tenant.id, "finn", model="scripted/priced")
    llm.register_key(tenant.key, StepScript(failures={"SPEC": 1}))
    pipeline = load_valid_pipeline(
        "id: p\nname: P\nversion: '1'\nagents: [{id: finn, name: Finn}]\n"
        "steps:\n  - id: SPEC\n    agent: finn\n    model: scripted/coder\n    input: go\n    outputs: [spec]\n"
    )
    request = _request(tenant, step_id="sr-fail", pipeline=pipeline, pipeline_step="SPEC", outputs=("spec",))
    outcome = await execute_agent_step(deps, request)
    assert (outcome.model, outcome.model_source) == ("scripted/coder", "step")
    assert outcome.status == "fail" and outcome.error == "SPEC broke on purpose"
    tokens = GatewayTokens(deps.db, deps.redis)
    assert await tokens.revoke_step(tenant.id, "sr-fail") == 0  # already revoked


async def test_the_workspaces_cap_per_run_rides_on_each_steps_token(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer
) -> None:
    from decimal import Decimal

    from sqlalchemy import select

    from app.llm import budget
    from app.llm.models import LlmToken
    from tests.llm.gateway import SETUP

    await add_agents(db, tenant.id, "finn")
    llm.register_key(tenant.key, StepScript())
    async with db.tenant_session(tenant.id) as session:
        assert await budget.set_run_cap(session, actor=SETUP, cap=Decimal("0.00"))
    # Nothing may be spent in this run: the gateway refuses the step's first call, and the step says why.
    outcome = await execute_agent_step(deps, _request(tenant, scope_id="run-capped", step_id="sr-capped"))
    assert outcome.status != "complete"
    assert outcome.error is not None and "this run's LLM budget of $0 is spent" in outcome.error
    async with db.tenant_session(tenant.id) as session:
        caps = list(await session.scalars(select(LlmToken.run_cap).where(LlmToken.step_id == "sr-capped")))
        assert caps == [Decimal("0.00")]
        assert await budget.set_run_cap(session, actor=SETUP, cap=None)
    # Without a cap the same step runs, and its token carries none.
    outcome = await execute_agent_step(deps, _request(tenant, scope_id="run-free", step_id="sr-free"))
    assert outcome.status == "complete", outcome.error


async def test_one_workspaces_cap_per_run_never_reaches_another_workspace(
    db: Database,
    deps: ExecutionDeps,
    llm: ScriptedServer,
    tenant: Tenant,
    gateway: GatewayServer,
    settings: Settings,
    secrets_service: SecretsService,
) -> None:
    """The attack: workspace A caps each run at $0; workspace B's step, even under the same run id, runs."""
    from decimal import Decimal

    from app.llm import budget
    from tests.llm.gateway import SETUP, make_tenant

    other = await make_tenant(db, settings, secrets_service, llm.url, "other")
    for workspace in (tenant, other):
        await add_agents(db, workspace.id, "finn")
        llm.register_key(workspace.key, StepScript())
    async with db.tenant_session(tenant.id) as session:
        await budget.set_run_cap(session, actor=SETUP, cap=Decimal("0.00"))
    theirs = await execute_agent_step(deps, _request(other, scope_id="run-shared", step_id="sr-other"))
    assert theirs.status == "complete", theirs.error
    ours = await execute_agent_step(deps, _request(tenant, scope_id="run-shared", step_id="sr-ours"))
    assert ours.status != "complete" and ours.error is not None and "budget" in ours.error
