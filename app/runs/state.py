"""The run's state machine: what happens next, decided in one transaction under the run's row lock.

:func:`advance` is idempotent: it looks at the run and its newest step visit, acts on whatever has not been
acted on (a visit's end is routed once: ``routed``), and returns :class:`Effects` that the caller applies
after the commit (jobs to enqueue, events to publish, tokens to revoke). Called any number of times, from
any worker, it converges on the same state: the engine's jobs, the controls' kicks and the reaper all call it.

The rules (onComplete, onResult, loops, retries) are the pure functions of :mod:`app.pipelines.routing`;
this module owns the state they act on.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any
from uuid import uuid4

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.live.bus import EventType
from app.pipelines import (
    Action,
    CompleteRun,
    FailRun,
    GoTo,
    LoopItemDone,
    LoopItemsError,
    PipelineInvalid,
    Retry,
    after_loop_item,
    load_valid_pipeline,
    loop_items,
    retry_context,
    route_completed_step,
    route_failed_step,
    step_limits,
)
from app.pipelines.spec import Pipeline, Step
from app.runs.models import Run, RunLoopItem, RunStep

TERMINAL = frozenset({"completed", "failed", "cancelled"})
ACTIVE_VISIT = frozenset({"queued", "running"})
# A run that visits more steps than this is going round in circles (a review that never approves).
MAX_VISITS = 2000


@lru_cache(maxsize=256)
def pinned_pipeline(yaml: str) -> Pipeline:
    """The pipeline of a run's pinned YAML, parsed once per process (the text never changes for a run)."""
    return load_valid_pipeline(yaml)


def new_id() -> str:
    return uuid4().hex


def now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Enqueue:
    visit_id: str
    attempt: int
    generation: int


@dataclass
class Effects:
    """What to do once the transaction has committed (never before: a job must find what it is about)."""

    run_id: str
    events: list[tuple[EventType, dict[str, Any]]] = field(default_factory=list)
    enqueue: list[Enqueue] = field(default_factory=list)
    # Ring the run's doorbell: a worker running one of its steps re-reads the run (cancel, injected context).
    doorbell: bool = False
    revoke_tokens: bool = False
    finished: bool = False

    def event(self, type_: EventType, **payload: Any) -> None:
        self.events.append((type_, {"runId": self.run_id, **payload}))

    def extend(self, other: Effects) -> None:
        self.events += other.events
        self.enqueue += other.enqueue
        self.doorbell |= other.doorbell
        self.revoke_tokens |= other.revoke_tokens
        self.finished |= other.finished


def ordered_outputs(step: Step | None, outputs: Mapping[str, str]) -> dict[str, str]:
    """Outputs in the step's declared order (JSONB keeps no order; onResult's first match depends on it)."""
    names = list(step.outputs) if step is not None else []
    ordered = {name: outputs[name] for name in names if name in outputs}
    ordered.update({k: v for k, v in outputs.items() if k not in ordered})
    return ordered


async def last_visit(session: AsyncSession, run_id: str, *, for_update: bool = False) -> RunStep | None:
    query = select(RunStep).where(RunStep.run_id == run_id).order_by(RunStep.seq.desc()).limit(1)
    if for_update:
        query = query.with_for_update()
    found: RunStep | None = await session.scalar(query)
    return found


def visit_payload(visit: RunStep, **extra: Any) -> dict[str, Any]:
    return {
        "stepId": visit.step_id,
        "visitId": visit.id,
        "seq": visit.seq,
        "attempt": visit.attempt,
        "agentId": visit.agent_id,
        "loopItem": visit.loop_item,
        **extra,
    }


class Machine:
    """One :func:`advance` in progress: the run, its pipeline, and the effects collected so far."""

    def __init__(self, session: AsyncSession, run: Run, pipeline: Pipeline, fx: Effects) -> None:
        self.session = session
        self.run = run
        self.pipeline = pipeline
        self.fx = fx
        self.moment = now()

    # -- ends of the run -------------------------------------------------------------------------------------

    def complete(self) -> None:
        self.run.status, self.run.reason, self.run.finished_at = "completed", "", self.moment
        self.run.active_loop = None
        self.fx.event(EventType.RUN_COMPLETE, outputs=dict(self.run.outputs))
        self.fx.finished = self.fx.revoke_tokens = True

    def fail(self, reason: str) -> None:
        self.run.status, self.run.reason, self.run.finished_at = "failed", reason, self.moment
        self.fx.event(EventType.RUN_FAILED, error=reason)
        self.fx.finished = self.fx.revoke_tokens = True

    # -- visits ----------------------------------------------------------------------------------------------

    async def goto(self, step_id: str, via: str, *, human_context: str = "", depth: int = 0) -> None:
        step = self.pipeline.step(step_id)
        if step is None:
            self.fail(f"Step {step_id} is not in the pipeline.")
            return
        # Visits are numbered 1, 2, ... without gaps: the newest number is how many there are.
        seq = await self.session.scalar(
            select(func.coalesce(func.max(RunStep.seq), 0)).where(RunStep.run_id == self.run.id)
        )
        if (seq or 0) >= MAX_VISITS:
            self.fail(f"The run visited {MAX_VISITS} steps without finishing; it is stopped as going in circles.")
            return
        item: RunLoopItem | None = None
        if step.is_loop:
            item = await self._loop_item_for(step)
            if item is None:
                if self.run.status == "running":  # no items at all: the loop is done before it starts
                    await self.act(
                        after_loop_item(self.pipeline, step.id, from_each_complete=True, items_left=False), depth
                    )
                return
        limits = step_limits(self.pipeline, step)
        visit = RunStep(
            id=new_id(),
            run_id=self.run.id,
            seq=(seq or 0) + 1,
            step_id=step.id,
            agent_id=step.agent,
            via=via,
            loop_item=item.index if item is not None else None,
            status="queued",
            attempt=1,
            max_retries=limits.max_retries,
            human_context=human_context,
            injections=[],
            outputs={},
            attempts=[],
            queued_at=self.moment,
        )
        self.session.add(visit)
        await self.session.flush()
        self.fx.event(EventType.STEP_QUEUED, **visit_payload(visit, via=via))
        self.fx.enqueue.append(Enqueue(visit.id, visit.attempt, 0))

    async def _loop_item_for(self, step: Step) -> RunLoopItem | None:
        """The item a visit of loop ``step`` works on: the first not completed, making the items if needed."""
        assert step.loop is not None
        items = list(
            await self.session.scalars(
                select(RunLoopItem)
                .where(RunLoopItem.run_id == self.run.id, RunLoopItem.loop_step == step.id)
                .order_by(RunLoopItem.index)
                .with_for_update()
            )
        )
        pending = [item for item in items if item.status != "completed"]
        if items and pending:
            self.run.active_loop = step.id
            return pending[0]
        for item in items:  # a loop entered again after it finished: a new pass over the current output
            await self.session.delete(item)
        await self.session.flush()
        try:
            made = loop_items(step.id, step.loop.over, self.run.outputs.get(step.loop.over))
        except LoopItemsError as error:
            self.fail(f"Step {step.id}: {error}.")
            return None
        rows = [
            RunLoopItem(
                run_id=self.run.id, loop_step=step.id, index=i.index, item_id=i.id, data=i.data, status="pending"
            )
            for i in made
        ]
        self.session.add_all(rows)
        await self.session.flush()
        self.run.active_loop = step.id if rows else None
        return rows[0] if rows else None

    def requeue(self, visit: RunStep, error: str, max_retries: int) -> None:
        """The same visit again, one attempt later, with the previous error added to its context."""
        visit.attempts = [*visit.attempts, attempt_record(visit)]
        visit.attempt += 1
        visit.human_context = retry_context(visit.human_context, visit.attempt - 1, max_retries, error).strip()
        visit.status, visit.routed, visit.error, visit.outputs, visit.summary = "queued", False, "", {}, ""
        visit.started_at = visit.finished_at = None
        visit.lease_owner, visit.lease_expires_at, visit.takeovers = None, None, 0
        visit.queued_at = self.moment
        self.fx.event(EventType.STEP_RETRYING, **visit_payload(visit, error=error, maxRetries=max_retries))
        self.fx.enqueue.append(Enqueue(visit.id, visit.attempt, visit.lease_generation))

    # -- acting on a visit's end -----------------------------------------------------------------------------

    async def act(self, action: Action, depth: int = 0, visit: RunStep | None = None) -> None:
        if depth > 20:  # loops of zero items pointing at each other
            self.fail("The pipeline's loops point at each other without any step to run.")
            return
        if isinstance(action, GoTo):
            await self.goto(action.step_id, action.via, depth=depth + 1)
        elif isinstance(action, Retry):
            if visit is None or visit.attempt - 1 >= action.max_retries:
                self.fail(f"Step {action.step_id} asked to be retried more than {action.max_retries} times.")
            else:
                values = ", ".join(f"{k}={v}" for k, v in visit.outputs.items())
                self.requeue(visit, f"the step's result asks for a retry ({values})", action.max_retries)
        elif isinstance(action, LoopItemDone):
            await self.loop_item_done(action.loop_step_id, action.from_each_complete, depth)
        elif isinstance(action, CompleteRun):
            self.complete()
        elif isinstance(action, FailRun):
            self.fail(action.error)

    async def loop_item_done(self, loop_step_id: str | None, from_each_complete: bool, depth: int) -> None:
        loop_id = loop_step_id or self.run.active_loop
        loop_step = self.pipeline.step(loop_id) if loop_id else None
        if loop_step is None or loop_step.loop is None:
            self.fail("A step asked to continue a loop, but the run is in no loop.")
            return
        if not from_each_complete and loop_step.loop.on_each_complete:
            # The item goes on to its onEachComplete step (a review, a test); it is done when that says so.
            await self.goto(loop_step.loop.on_each_complete, "onEachComplete", depth=depth + 1)
            return
        items = list(
            await self.session.scalars(
                select(RunLoopItem)
                .where(RunLoopItem.run_id == self.run.id, RunLoopItem.loop_step == loop_step.id)
                .order_by(RunLoopItem.index)
                .with_for_update()
            )
        )
        pending = [item for item in items if item.status != "completed"]
        if pending:
            current = pending[0]
            current.status, current.completed_at = "completed", self.moment
            self.fx.event(
                EventType.LOOP_ITEM_COMPLETE, stepId=loop_step.id, itemId=current.item_id, index=current.index
            )
            pending = pending[1:]
        if not pending:
            self.run.active_loop = None
        action = after_loop_item(self.pipeline, loop_step.id, from_each_complete=True, items_left=bool(pending))
        await self.act(action, depth + 1)

    async def route(self, visit: RunStep) -> None:
        visit.routed = True
        step = self.pipeline.step(visit.step_id)
        if visit.status == "completed":
            route = route_completed_step(self.pipeline, visit.step_id, ordered_outputs(step, visit.outputs))
            if route.notify is not None:
                self.fx.event(
                    EventType.AGENT_MESSAGE,
                    **{
                        "from": "system",
                        "to": route.notify.agent,
                        "message": route.notify.message,
                        "stepId": visit.step_id,
                    },
                )
            await self.act(route.action, visit=visit)
            return
        failed = route_failed_step(self.pipeline, visit.step_id, visit.attempt - 1, visit.error or "no reason given")
        if isinstance(failed.action, Retry):
            self.requeue(visit, visit.error or "no reason given", failed.action.max_retries)
            return
        if visit.loop_item is not None:
            self.fx.event(EventType.LOOP_ITEM_FAILED, stepId=visit.step_id, index=visit.loop_item)
        await self.act(failed.action, visit=visit)


def attempt_record(visit: RunStep) -> dict[str, Any]:
    return {
        "attempt": visit.attempt,
        "status": visit.status,
        "error": visit.error,
        "outputs": dict(visit.outputs),
        "summary": visit.summary,
        "started_at": visit.started_at.isoformat() if visit.started_at else None,
        "finished_at": visit.finished_at.isoformat() if visit.finished_at else None,
        "input_tokens": visit.input_tokens,
        "output_tokens": visit.output_tokens,
        "cost": str(visit.cost),
    }


def announce(run: Run, fx: Effects) -> None:
    if run.announced_status == run.status:
        return
    if not run.announced_status:
        fx.event(EventType.RUN_CREATED, pipelineId=run.pipeline_id, pipelineVersion=run.pipeline_version, task=run.task)
    if run.announced_status or run.status != "queued":
        fx.event(
            EventType.RUN_STATUS_CHANGED,
            status=run.status,
            previous=run.announced_status or "queued",
            reason=run.reason,
        )
    run.announced_status = run.status


async def advance(session: AsyncSession, run_id: str) -> Effects:
    """Take the run one decision further (see the module docstring); the caller commits, then applies."""
    fx = Effects(run_id)
    run = await session.get(Run, run_id, with_for_update=True)
    if run is None:
        return fx
    if run.status in TERMINAL:
        await _close_visits(session, run, fx)
        announce(run, fx)
        return fx
    try:
        pipeline = pinned_pipeline(run.pipeline_yaml)
    except PipelineInvalid as error:
        run.status, run.reason, run.finished_at = "failed", f"The pinned pipeline is not valid: {error}", now()
        fx.finished = True
        announce(run, fx)
        return fx
    machine = Machine(session, run, pipeline, fx)
    if run.status == "queued":
        announce(run, fx)  # RUN_CREATED first
        run.status, run.started_at = "running", now()
    if run.status == "paused":
        announce(run, fx)
        return fx
    latest = await last_visit(session, run.id, for_update=True)
    if latest is None:
        first = pipeline.first_step
        if first is None:
            machine.fail("The pipeline has no steps.")
        else:
            await machine.goto(first.id, "start")
    elif latest.status == "queued":
        # Its job may be gone (a crash between commit and enqueue) or spent (it found the run paused and left
        # the visit queued): enqueue it under a new job id. Should the old job still be waiting, the claim
        # lets only one of the two run it.
        latest.lease_generation += 1
        fx.enqueue.append(Enqueue(latest.id, latest.attempt, latest.lease_generation))
        # Said again: a visit queued by a control (a restarted step) is announced here, after its commit.
        fx.event(EventType.STEP_QUEUED, **visit_payload(latest, via=latest.via))
        # A control may have cancelled a step that still runs somewhere: its worker re-reads now.
        fx.doorbell = True
    elif latest.status == "running":
        # A kick while a step runs (context injected, a step restarted): its worker re-reads now.
        fx.doorbell = True
    elif latest.status in ("completed", "failed") and not latest.routed:
        await machine.route(latest)
    if run.status in TERMINAL:
        await _close_visits(session, run, fx)
    announce(run, fx)
    return fx


async def _close_visits(session: AsyncSession, run: Run, fx: Effects) -> None:
    """A finished run has no visit queued or running: cancel them (a running one's worker hears the doorbell)."""
    rows = await session.scalars(
        select(RunStep).where(RunStep.run_id == run.id, RunStep.status.in_(ACTIVE_VISIT)).with_for_update()
    )
    for visit in rows:
        if visit.status == "running":
            fx.doorbell = True
        visit.status, visit.finished_at = "cancelled", now()
        visit.error = visit.error or f"The run was {run.status}."
        visit.lease_owner = visit.lease_expires_at = None
        fx.event(EventType.STEP_CANCELLED, **visit_payload(visit))
    fx.finished = fx.revoke_tokens = True
