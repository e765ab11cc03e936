"""One agent step, executed: token, prompt, model, sandbox, relay, revoke (the engine's and swarms' shared path).

::

    outcome = await execute_agent_step(deps, StepRequest(...), on_event=None)

* A gateway token is minted for (workspace, run or swarm, step, agent) and revoked in a ``finally``, however
  the step ends (a result, an error, the caller's cancellation).
* The system prompt is assembled from the workspace's agent (``assemble_system_prompt``); a deleted agent ends
  the step at once with a clear error (no sandbox, no token).
* The model: the pipeline's rule (``resolve_model``: run > step > pipeline agent > pipeline defaults) when a
  pipeline is given, else the request's own; then the workspace agent's model; then the workspace's default
  (the first model of its catalogue). No model at all is a clear error too.
* The sandbox runs over a per-workspace directory (``stepdirs``); events are relayed to a live topic with
  DjinnBot's names (:class:`EventRelay`), and also handed to ``on_event`` when given.
* Cost: what the gateway metered for this step's token (``llm_calls``), summed once the step is over.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from redis.asyncio import Redis
from sqlalchemy import func, select

from app.agents.models import Agent
from app.agents.prompt import StepBrief, assemble_system_prompt
from app.db import Database
from app.execution.relay import EventRelay
from app.live.bus import EventBus, Topic
from app.llm import budget
from app.llm import service as llm_service
from app.llm.models import LlmCall
from app.llm.tokens import GatewayTokens, mint_token
from app.pipelines.routing import resolve_model
from app.pipelines.spec import Pipeline
from app.sandbox import stepdirs
from app.sandbox.step import AgentStep, OutputSchema, StepControl, StepEvent, StepResult, StepStatus, Usage
from app.sandbox.supervisor import Supervisor

logger = logging.getLogger(__name__)

OnStepEvent = Callable[[StepEvent], Awaitable[None]]

# A step's token lives a little longer than the step may run; revocation ends it sooner.
_TOKEN_SLACK = timedelta(minutes=10)
_MAX_TOKEN_TTL = timedelta(hours=12)


@dataclass(frozen=True)
class ExecutionDeps:
    """What executing a step needs from its worker: built once per worker process (tests build their own)."""

    db: Database
    redis: Redis
    bus: EventBus
    # None in a process that only decides (the short queue's advance and reaper jobs): it runs no step.
    supervisor: Supervisor | None
    # settings.sandbox_files_dir: the root of the per-workspace step directories.
    files_root: Path


@dataclass(frozen=True)
class StepSettings:
    """Limits of one step (from ``step_limits`` for a pipeline step); ``tools`` None: the agent's own tools."""

    timeout_seconds: float = 600.0
    max_turns: int = 30
    temperature: float | None = None
    max_output_tokens: int | None = None
    tools: tuple[str, ...] | None = None


@dataclass(frozen=True)
class StepRequest:
    workspace_id: str
    # The run (or swarm) the step belongs to: the token's run, the directory's second level.
    scope_id: str
    # This execution of the step (unique per attempt is best): the token's step, the sandbox's label.
    step_id: str
    agent_id: str
    input: str
    # What the prompt calls the step and its pipeline ("IMPLEMENT" of "Engineering").
    step_name: str = ""
    pipeline_name: str = ""
    outputs: tuple[str, ...] = ()
    routing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Outputs that must be JSON arrays (a later step loops over them).
    json_arrays: tuple[str, ...] = ()
    output_schema: OutputSchema | None = None
    settings: StepSettings = field(default_factory=StepSettings)
    # Model rule: with a pipeline, resolve_model(pipeline, pipeline_step, run_override=model); else ``model``.
    model: str | None = None
    pipeline: Pipeline | None = None
    pipeline_step: str | None = None
    # The directory the sandbox works in, under <files_root>/<workspace>/<scope_id>/; runs share one ("work").
    workdir_name: str | None = None
    # Where events go live (None: only to ``on_event``); ``event_base`` is added to every payload.
    topic: Topic | None = None
    event_base: Mapping[str, Any] = field(default_factory=dict)
    control: StepControl | None = None
    run_cap: Decimal | None = None
    # False: the caller sums the cost itself (the engine does, in the transaction that stores the step).
    measure_cost: bool = True
    # Tests and the bench: what the sandbox runs instead of the agent runtime.
    command: list[str] | None = None
    env: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StepOutcome:
    status: StepStatus
    outputs: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    error: str | None = None
    usage: Usage = Usage()
    cost: Decimal = Decimal(0)
    model: str = ""
    # Which precedence rule chose the model ("step", "workspace agent", ...).
    model_source: str = ""
    workdir: Path | None = None
    duration_seconds: float = 0.0
    files_changed: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.status == "complete"


def refused(error: str) -> StepOutcome:
    """An outcome for a step that never started (its agent is gone, no model): a failure with a reason."""
    return StepOutcome(status="error", error=error)


def _choose_model(request: StepRequest, agent: Agent, default: str | None) -> tuple[str | None, str]:
    if request.pipeline is not None and request.pipeline_step is not None:
        chosen = resolve_model(
            request.pipeline,
            request.pipeline_step,
            platform_default=default or "",
            run_override=request.model,
            workspace_agent_model=agent.model,
        )
        source = "workspace default" if chosen.source == "platform" else chosen.source
        return (chosen.model or None), source
    for model, source in ((request.model, "step"), (agent.model, "workspace agent"), (default, "workspace default")):
        if model and model.strip():
            return model.strip(), source
    return None, ""


async def step_cost(db: Database, workspace_id: str, run_id: str, step_id: str) -> Decimal:
    """What the gateway metered for one step execution (its token's calls)."""
    async with db.tenant_session(workspace_id) as session:
        total = await session.scalar(
            select(func.coalesce(func.sum(LlmCall.cost), 0)).where(LlmCall.run_id == run_id, LlmCall.step_id == step_id)
        )
    return Decimal(total or 0)


async def execute_agent_step(
    deps: ExecutionDeps, request: StepRequest, on_event: OnStepEvent | None = None
) -> StepOutcome:
    """Run one agent step to its end; never leaves a token or a sandbox behind (see the module docstring)."""
    ws = request.workspace_id
    if deps.supervisor is None:
        return refused("This worker runs no sandboxes (a step runs on the long queue's workers).")
    supervisor = deps.supervisor
    workdir = await asyncio.to_thread(
        stepdirs.step_dir, deps.files_root, ws, request.scope_id, request.workdir_name or request.step_id
    )
    ttl = min(timedelta(seconds=request.settings.timeout_seconds) + _TOKEN_SLACK, _MAX_TOKEN_TTL)
    # One transaction: the agent (gone: refused, nothing minted), the model, the step's token.
    async with deps.db.tenant_session(ws) as session:
        agent = await session.get(Agent, request.agent_id)
        if agent is None:
            return refused(f"The agent “{request.agent_id}” no longer exists in this workspace.")
        model, source = _choose_model(request, agent, None)
        if model is None or source == "workspace default":
            models = await llm_service.model_strings(session)
            model, source = _choose_model(request, agent, models[0] if models else None)
        if model is None:
            return refused("No model to run this step on: connect an LLM provider or give the agent a model.")
        # The caller's cap, else the workspace's cap per run (or swarm) in force as the step starts.
        run_cap = request.run_cap if request.run_cap is not None else (await budget.caps(session)).run
        minted = await mint_token(
            session, ws, agent_id=agent.id, run_id=request.scope_id, step_id=request.step_id, ttl=ttl,
            run_cap=run_cap,
        )  # fmt: skip
    tokens = GatewayTokens(deps.db, deps.redis)
    relay: EventRelay | None = None
    try:
        tools = request.settings.tools if request.settings.tools is not None else tuple(agent.tools)
        brief = StepBrief(
            pipeline=request.pipeline_name,
            step=request.step_name or request.step_id,
            outputs=request.outputs,
            routing=dict(request.routing),
            json_arrays=request.json_arrays,
        )
        step = AgentStep(
            id=request.step_id,
            model=model,
            system_prompt=assemble_system_prompt(agent, step=brief),
            input=request.input,
            tools=tools,
            max_turns=request.settings.max_turns,
            timeout_seconds=request.settings.timeout_seconds,
            temperature=request.settings.temperature,
            max_output_tokens=request.settings.max_output_tokens,
            outputs=request.outputs,
            routing={k: list(v) for k, v in request.routing.items()},
            output_schema=request.output_schema,
        )
        if request.topic is not None:
            relay = EventRelay(deps.bus, ws, request.topic, request.event_base)

        async def relay_event(event: StepEvent) -> None:
            if relay is not None:
                await relay(event)
            if on_event is not None:
                await on_event(event)

        result: StepResult = await supervisor.run_step(
            step,
            workspace_id=ws,
            workdir=workdir,
            llm_token=minted.token,
            on_event=relay_event,
            control=request.control,
            command=request.command,
            env=request.env,
            labels={"marid.scope": request.scope_id},
        )
    finally:
        # Shielded: a cancelled job must still revoke its token and flush the events it has.
        await asyncio.shield(_finish(tokens, relay, ws, request.step_id))
    cost = await step_cost(deps.db, ws, request.scope_id, request.step_id) if request.measure_cost else Decimal(0)
    return StepOutcome(
        status=result.status,
        outputs=dict(result.outputs),
        summary=result.summary,
        error=result.error,
        usage=result.usage,
        cost=cost,
        model=model,
        model_source=source,
        workdir=workdir,
        duration_seconds=result.duration_seconds,
        files_changed=tuple(change.path for change in result.files_changed),
    )


async def _finish(tokens: GatewayTokens, relay: EventRelay | None, workspace_id: str, step_id: str) -> None:
    try:
        await tokens.revoke_step(workspace_id, step_id)
    except Exception:
        logger.exception("revoking the token of step %s failed", step_id)
    if relay is not None:
        try:
            await relay.close()
        except Exception:
            logger.exception("flushing the events of step %s failed", step_id)
