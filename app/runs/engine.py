"""The engine's work, job by job: advance a run, execute one step visit, reap expired leases.

:class:`Engine` is built once per worker process (``app/runs/jobs.py``) around an :class:`ExecutionDeps`; the
jobs are thin wrappers. Every change goes through Postgres first, guarded so it happens once:

* **claim**: ``queued -> running`` for (visit, attempt), with this worker as the lease owner;
* **heartbeat**: extends the lease while the owner still holds it (else the step is aborted: it was taken over
  or cancelled);
* **store**: ``running -> completed|failed`` for (visit, attempt, owner), outputs and the run's merged outputs
  in the same transaction, so a step completes exactly once and its outputs are stored before the transition;
* **advance**: routes the stored end (``app/runs/state.py``) in the same job, right after the store (one queue
  hop per step), or in an ``advance_run`` job when a control kicks the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.validators import validator_for
from sqlalchemy import ScalarSelect, func, select, update

from app.execution import ExecutionDeps, StepOutcome, StepRequest, StepSettings, execute_agent_step
from app.live.bus import EventType, Topic
from app.llm.models import LlmCall
from app.llm.tokens import GatewayTokens
from app.pipelines import render_template, step_limits
from app.pipelines.spec import Pipeline, ResultBranch, Step
from app.runs import files
from app.runs.control import ACTIVE_WORKSPACES, Tuning, doorbell_channel, ring
from app.runs.models import Run, RunLoopItem, RunStep
from app.runs.state import Effects, Enqueue, advance, now, ordered_outputs, pinned_pipeline
from app.sandbox.step import OutputSchema, StepControl

logger = logging.getLogger(__name__)

# A step queued this long without starting is enqueued again (its job may have been lost with Redis).
STALE_QUEUED = timedelta(minutes=10)
# An attempt that loses its worker this many times fails (it may be what kills them).
MAX_TAKEOVERS = 3
# (workspace, run, visit, attempt, generation): puts an execute_step job on the long queue.
EnqueueStep = Callable[[str, str, str, int, int], Awaitable[None]]


@dataclass(frozen=True)
class Claim:
    visit_id: str
    attempt: int
    step_id: str
    agent_id: str
    human_context: str
    injections: int
    loop_item: int | None
    run_task: str
    run_outputs: dict[str, str]
    pipeline: Pipeline
    model_override: str | None


class Engine:
    def __init__(
        self, deps: ExecutionDeps, enqueue_step: EnqueueStep, *, worker_id: str, tuning: Tuning | None = None
    ) -> None:
        self.deps = deps
        self.enqueue_step = enqueue_step
        self.worker_id = worker_id
        self.tuning = tuning or Tuning.from_env()

    # -- advancing -------------------------------------------------------------------------------------------

    async def advance(self, workspace_id: str, run_id: str) -> Effects:
        async with self.deps.db.tenant_session(workspace_id) as session:
            fx = await advance(session, run_id)
        await self.apply(workspace_id, fx)
        return fx

    async def apply(self, workspace_id: str, fx: Effects) -> None:
        """After the commit: events in order, then the bell, the tokens, the next jobs."""
        topic = Topic.run(fx.run_id)
        for event_type, payload in fx.events:
            await self.deps.bus.publish(workspace_id, topic, event_type, payload)
        if fx.doorbell:
            await ring(self.deps.redis, workspace_id, fx.run_id)
        if fx.revoke_tokens:
            await GatewayTokens(self.deps.db, self.deps.redis).revoke_run(workspace_id, fx.run_id)
        if fx.enqueue:
            await self.deps.redis.sadd(ACTIVE_WORKSPACES, workspace_id)  # type: ignore[misc]
        for job in fx.enqueue:
            await self.enqueue_step(workspace_id, fx.run_id, job.visit_id, job.attempt, job.generation)

    # -- executing a step ------------------------------------------------------------------------------------

    async def _claim(self, workspace_id: str, run_id: str, visit_id: str, attempt: int) -> Claim | None:
        lease = timedelta(seconds=self.tuning.lease_seconds)
        async with self.deps.db.tenant_session(workspace_id) as session:
            run = await session.get(Run, run_id)
            if run is None or run.status != "running":
                return None
            moment = now()
            claimed = await session.execute(
                update(RunStep)
                .where(RunStep.id == visit_id, RunStep.run_id == run_id, RunStep.attempt == attempt)
                .where(RunStep.status == "queued")
                .values(
                    status="running",
                    lease_owner=self.worker_id,
                    lease_expires_at=moment + lease,
                    heartbeat_at=moment,
                    started_at=moment,
                )
                .returning(RunStep)
            )
            visit = claimed.scalar_one_or_none()
            if visit is None:
                return None
            return Claim(
                visit_id=visit.id,
                attempt=visit.attempt,
                step_id=visit.step_id,
                agent_id=visit.agent_id,
                human_context=visit.human_context,
                injections=len(visit.injections),
                loop_item=visit.loop_item,
                run_task=run.task,
                run_outputs=dict(run.outputs),
                pipeline=pinned_pipeline(run.pipeline_yaml),
                model_override=run.model_override,
            )

    async def _variables(self, workspace_id: str, run_id: str, claim: Claim, step: Step) -> dict[str, str]:
        values = {
            **claim.run_outputs,
            "task_description": claim.run_task,
            "human_context": claim.human_context,
            "additional_context": claim.human_context,
            "run_id": run_id,
        }
        if claim.loop_item is not None:
            loop_step = step.id if step.is_loop else None
            async with self.deps.db.tenant_session(workspace_id) as session:
                items = list(
                    await session.scalars(
                        select(RunLoopItem)
                        .where(RunLoopItem.run_id == run_id, RunLoopItem.loop_step == (loop_step or step.id))
                        .order_by(RunLoopItem.index)
                    )
                )
            current = next((item for item in items if item.index == claim.loop_item), None)
            values["current_item"] = current.data if current is not None else ""
            done = [item.data for item in items if item.status == "completed"]
            values["completed_items"] = "\n".join(f"- {item}" for item in done) if done else "(none yet)"
        return values

    async def execute(self, workspace_id: str, run_id: str, visit_id: str, attempt: int) -> str:
        """Run one attempt of one step visit; what came of it ("completed", "failed", "skipped", "lost", ...)."""
        claim = await self._claim(workspace_id, run_id, visit_id, attempt)
        if claim is None:
            return "skipped"
        topic = Topic.run(run_id)
        step = claim.pipeline.step(claim.step_id)
        base = {"runId": run_id, "stepId": claim.step_id, "visitId": visit_id, "attempt": attempt}
        await self.deps.bus.publish(workspace_id, topic, EventType.STEP_STARTED, {**base, "agentId": claim.agent_id})
        text = ""
        if step is None:  # cannot happen with a validated pinned pipeline; still a reason rather than a hang
            outcome = StepOutcome(status="error", error=f"Step {claim.step_id} is not in the pinned pipeline.")
        else:
            outcome, text = await self._run_agent(workspace_id, run_id, claim, step, base)
        if outcome.status == "complete" and step is not None and step.output_schema is not None:
            problem = schema_problem(step, outcome.outputs)
            if problem is not None:
                outcome = StepOutcome(**{**outcome.__dict__, "status": "fail", "error": problem})
        commit = None
        if outcome.files_changed:
            try:
                commit = await asyncio.to_thread(
                    files.snapshot, self.deps.files_root, workspace_id, run_id, f"{claim.step_id} (attempt {attempt})"
                )
            except Exception:
                logger.exception("snapshotting the files of run %s failed", run_id)
        return await self._store(workspace_id, run_id, claim, outcome, commit, base, text)

    async def _run_agent(
        self, workspace_id: str, run_id: str, claim: Claim, step: Step, base: dict[str, Any]
    ) -> tuple[StepOutcome, str]:
        pipeline = claim.pipeline
        limits = step_limits(pipeline, step)
        variables = await self._variables(workspace_id, run_id, claim, step)
        text = render_template(step.input, variables)
        if claim.human_context.strip() and "{{human_context}}" not in step.input.replace(" ", ""):
            text = f"{text}\n\n{claim.human_context}"
        routing = routing_hint(pipeline, step)
        looped = {other.loop.over for other in pipeline.steps if other.loop is not None}
        schema = step.output_schema
        request = StepRequest(
            workspace_id=workspace_id,
            scope_id=run_id,
            step_id=request_step_id(claim),
            agent_id=claim.agent_id,
            input=text,
            step_name=step.id,
            pipeline_name=pipeline.name,
            outputs=step.outputs,
            routing=routing,
            json_arrays=tuple(name for name in step.outputs if name in looped),
            output_schema=OutputSchema(schema.name, schema.schema, schema.strict is not False) if schema else None,
            settings=StepSettings(
                timeout_seconds=limits.timeout_seconds,
                max_turns=limits.max_turns,
                temperature=limits.temperature,
                max_output_tokens=limits.max_output_tokens,
                tools=limits.tools,
            ),
            model=claim.model_override,
            pipeline=pipeline,
            pipeline_step=step.id,
            workdir_name=files.WORKDIR,
            topic=Topic.run(run_id),
            event_base=base,
            control=StepControl(),
            measure_cost=False,
        )
        watch = _Watch(self, workspace_id, run_id, claim, request.control)
        watcher = asyncio.create_task(watch.run())
        try:
            outcome = await execute_agent_step(self.deps, request)
        except asyncio.CancelledError:
            # The worker is stopping (SIGTERM): hand the visit back for another worker, same attempt.
            await asyncio.shield(self._release(workspace_id, run_id, claim))
            raise
        except Exception as error:  # the platform failed (not the agent): a failed attempt with the reason
            logger.exception("step %s of run %s could not run", claim.step_id, run_id)
            outcome = StepOutcome(status="error", error=f"The step could not run: {error}")
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await watcher
        if watch.lost and outcome.status == "aborted":
            return StepOutcome(status="aborted", error=watch.lost), text
        return outcome, text

    async def _release(self, workspace_id: str, run_id: str, claim: Claim) -> None:
        async with self.deps.db.tenant_session(workspace_id) as session:
            await session.execute(
                update(RunStep)
                .where(RunStep.id == claim.visit_id, RunStep.attempt == claim.attempt)
                .where(RunStep.status == "running", RunStep.lease_owner == self.worker_id)
                .values(status="queued", lease_owner=None, lease_expires_at=None)
            )

    async def _store(
        self,
        workspace_id: str,
        run_id: str,
        claim: Claim,
        outcome: StepOutcome,
        commit: str | None,
        base: dict[str, Any],
        text: str,
    ) -> str:
        if outcome.status == "complete":
            status = "completed"
        elif outcome.status == "aborted":
            status = "cancelled"
        else:
            status = "failed"
        error = outcome.error or ("" if status == "completed" else f"The step ended with status {outcome.status}.")
        if outcome.status == "turn_limit" and not outcome.error:
            error = "The agent used all its turns without calling complete."
        step = claim.pipeline.step(claim.step_id)
        outputs = ordered_outputs(step, outcome.outputs) if status == "completed" else {}
        async with self.deps.db.tenant_session(workspace_id) as session:
            # The run's row first, as the controls lock it (run, then its visits): no deadlock between them.
            run = await session.get(Run, run_id, with_for_update=True)
            stored = await session.execute(
                update(RunStep)
                .where(RunStep.id == claim.visit_id, RunStep.attempt == claim.attempt)
                .where(RunStep.status == "running", RunStep.lease_owner == self.worker_id)
                .values(
                    status=status,
                    outputs=outputs,
                    summary=outcome.summary or "",
                    input=text,
                    error=error if status != "completed" else "",
                    model=outcome.model,
                    input_tokens=RunStep.input_tokens + outcome.usage.input_tokens,
                    output_tokens=RunStep.output_tokens + outcome.usage.output_tokens,
                    cost=RunStep.cost + step_cost_of(run_id, request_step_id(claim)),
                    commit=commit,
                    finished_at=now(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
                .returning(RunStep.id, RunStep.cost)
            )
            row = stored.one_or_none()
            if row is None:
                # Taken over (our lease expired) or cancelled meanwhile: the other outcome counts, not ours.
                logger.info("visit %s attempt %s of run %s was no longer ours", claim.visit_id, claim.attempt, run_id)
                return "lost"
            cost = row[1]
            if outputs and run is not None:
                run.outputs = {**run.outputs, **outputs}
                run.updated_at = now()
            fx = await advance(session, run_id) if status != "cancelled" else Effects(run_id)
        event = {
            "completed": EventType.STEP_COMPLETE,
            "failed": EventType.STEP_FAILED,
            "cancelled": EventType.STEP_CANCELLED,
        }[status]
        payload: dict[str, Any] = {
            **base,
            "outputs": outputs,
            "summary": outcome.summary,
            "error": error or None,
            "model": outcome.model,
            "inputTokens": outcome.usage.input_tokens,
            "outputTokens": outcome.usage.output_tokens,
            "cost": str(cost),
            "commit": commit,
        }
        await self.deps.bus.publish(workspace_id, Topic.run(run_id), event, payload)
        await self.apply(workspace_id, fx)
        return status

    # -- leases ----------------------------------------------------------------------------------------------

    async def heartbeat(self, workspace_id: str, claim: Claim) -> tuple[bool, str, list[str]]:
        """Extend the lease; (still ours, the run's status, the visit's injections)."""
        lease = timedelta(seconds=self.tuning.lease_seconds)
        async with self.deps.db.tenant_session(workspace_id) as session:
            moment = now()
            row = await session.execute(
                update(RunStep)
                .where(RunStep.id == claim.visit_id, RunStep.attempt == claim.attempt)
                .where(RunStep.status == "running", RunStep.lease_owner == self.worker_id)
                .values(lease_expires_at=moment + lease, heartbeat_at=moment)
                .returning(RunStep.run_id, RunStep.injections)
            )
            found = row.one_or_none()
            if found is None:
                return False, "", []
            status = await session.scalar(select(Run.status).where(Run.id == found[0]))
        return True, status or "", list(found[1])

    async def reap(self, workspace_id: str) -> int:
        """Hand visits whose lease expired (their worker died) to another worker; the attempt is kept.

        An attempt that lost its worker ``MAX_TAKEOVERS`` times fails instead (something in it kills workers),
        and the run's retry rules take over from there.
        """
        async with self.deps.db.tenant_session(workspace_id) as session:
            expired = RunStep.status == "running", RunStep.lease_expires_at < now()
            failed = await session.execute(
                update(RunStep)
                .where(*expired, RunStep.takeovers >= MAX_TAKEOVERS - 1)
                .values(
                    status="failed",
                    error=f"The step's worker stopped {MAX_TAKEOVERS} times while running it.",
                    finished_at=now(),
                    lease_owner=None,
                    lease_expires_at=None,
                )
                .returning(RunStep.run_id)
            )
            stuck = sorted(set(failed.scalars().all()))
            requeued = await session.execute(
                update(RunStep)
                .where(*expired)
                .values(
                    status="queued",
                    lease_owner=None,
                    lease_expires_at=None,
                    lease_generation=RunStep.lease_generation + 1,
                    takeovers=RunStep.takeovers + 1,
                )
                .returning(RunStep.run_id, RunStep.id, RunStep.attempt, RunStep.lease_generation, RunStep.step_id)
            )
            taken = list(requeued.all())
            # A safety net for a queued step whose job is gone: enqueued again (under a new job id) by advancing.
            stale = await session.execute(
                update(RunStep)
                .where(RunStep.status == "queued", RunStep.queued_at < now() - STALE_QUEUED)
                .values(queued_at=now())
                .returning(RunStep.run_id)
            )
            stuck += sorted(set(stale.scalars().all()) - set(stuck))
            active = await session.scalar(select(Run.id).where(Run.status.in_(("queued", "running"))).limit(1))
        for run_id, visit_id, attempt, generation, step_id in taken:
            fx = Effects(run_id)
            fx.event(
                EventType.STEP_QUEUED,
                stepId=step_id,
                visitId=visit_id,
                attempt=attempt,
                via="lease expired",
                reason="The worker running this step stopped; another worker carries it on.",
            )
            fx.enqueue.append(Enqueue(visit_id, attempt, generation))
            await self.apply(workspace_id, fx)
        for run_id in stuck:
            await self.advance(workspace_id, run_id)
        if active is None:
            await self.deps.redis.srem(ACTIVE_WORKSPACES, workspace_id)  # type: ignore[misc]
        return len(taken) + len(stuck)


def request_step_id(claim: Claim) -> str:
    """The step id of one attempt's gateway token (its LLM calls are metered under it)."""
    return f"{claim.visit_id[:24]}-a{claim.attempt}"


def step_cost_of(run_id: str, step_id: str) -> ScalarSelect[Any]:
    """What the gateway metered for one attempt, as a subquery of the update that stores it."""
    return (
        select(func.coalesce(func.sum(LlmCall.cost), 0))
        .where(LlmCall.run_id == run_id, LlmCall.step_id == step_id)
        .scalar_subquery()
    )


def routing_hint(pipeline: Pipeline, step: Step) -> dict[str, tuple[str, ...]]:
    """The values the step's onResult routes on, for the prompt (``Routing values for X: A, B``): under the
    output that looks like a verdict, else the first output. Any output's value routes; this is a hint.

    Values that move the run on come first, those that send it back (a retry, a goto to this step or an earlier
    one) after them: the demo model answers the first value, so a demo run goes through to the end."""
    if not step.on_result or not step.outputs:
        return {}
    order = {other.id: index for index, other in enumerate(pipeline.steps)}
    here = order.get(step.id, 0)

    def goes_back(branch: ResultBranch) -> bool:
        return branch.retry or (branch.goto is not None and order.get(branch.goto, here + 1) <= here)

    branches = sorted(step.on_result, key=goes_back)  # stable: the file's order within each group
    names = [o for o in step.outputs if o.endswith(("verdict", "status", "result", "decision"))]
    return {(names or list(step.outputs))[0]: tuple(branch.value for branch in branches)}


def schema_problem(step: Step, outputs: dict[str, str] | Any) -> str | None:
    """Why a structured step's outputs break its JSON Schema; None when they fit."""
    import json

    assert step.output_schema is not None
    schema = step.output_schema.schema
    if len(step.outputs) == 1 and step.outputs[0] in outputs:
        try:
            value: Any = json.loads(outputs[step.outputs[0]])
        except ValueError:
            return f"Output {step.outputs[0]} is not JSON, so it cannot match its JSON Schema."
    else:
        value = {}
        for key, text in outputs.items():
            try:
                value[key] = json.loads(text)
            except ValueError:
                value[key] = text
    validator_class = validator_for(schema, default=Draft202012Validator)
    errors = sorted(validator_class(schema).iter_errors(value), key=lambda e: list(e.absolute_path))
    if not errors:
        return None
    first = errors[0]
    where = "/".join(str(p) for p in first.absolute_path) or "the top level"
    return f"The output does not match its JSON Schema ({step.output_schema.name}): at {where}: {first.message}"


class _Watch:
    """While a step runs: beat the lease, listen for the doorbell, abort or inject as Postgres says."""

    def __init__(self, engine: Engine, workspace_id: str, run_id: str, claim: Claim, control: StepControl | None):
        self.engine = engine
        self.workspace_id = workspace_id
        self.run_id = run_id
        self.claim = claim
        self.control = control or StepControl()
        self.delivered = claim.injections
        self.lost = ""

    async def run(self) -> None:
        redis = self.engine.deps.redis
        pubsub = redis.pubsub()
        await pubsub.subscribe(doorbell_channel(self.workspace_id, self.run_id))
        try:
            while True:
                with contextlib.suppress(TimeoutError):
                    await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.engine.tuning.heartbeat_seconds
                    )
                if await self.check():
                    return
        finally:
            with contextlib.suppress(Exception):
                await pubsub.unsubscribe()
                await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def check(self) -> bool:
        """True once the step has been told to stop."""
        try:
            ours, status, injections = await self.engine.heartbeat(self.workspace_id, self.claim)
        except Exception:
            logger.warning("heartbeat of visit %s failed", self.claim.visit_id, exc_info=True)
            return False
        if not ours:
            self.lost = "The step was cancelled or taken over by another worker."
            self.control.abort(self.lost)
            return True
        if status == "cancelled":
            self.lost = "The run was cancelled."
            self.control.abort(self.lost)
            return True
        for text in injections[self.delivered :]:
            self.control.inject(f"[ADDITIONAL CONTEXT] {text}")
        self.delivered = max(self.delivered, len(injections))
        return False


__all__ = ["Engine", "EnqueueStep", "Tuning", "routing_hint", "schema_problem"]
