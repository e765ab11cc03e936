"""The swarm scheduler's jobs: advance a swarm (short queue), run one task attempt (long queue), reap leases.

- ``advance_swarm`` runs one :func:`app.swarms.scheduler.tick` and enqueues the tasks it dispatched, each as
  ``run_swarm_task`` with the job id ``swarm-task:<ws>:<swarm>:<key>:<attempt>`` (one job per attempt).
- ``run_swarm_task`` takes the attempt's lease, runs the executor while renewing it (a renewal that fails means
  the task was cancelled or taken back: the step is aborted, its sandbox destroyed), records the outcome with
  a conditional UPDATE and ticks the swarm itself, in one transaction; then, for up to ``CHAIN_BUDGET``, it runs
  one of the tasks that tick dispatched (no queue hop between a task and the next one in its slot).
- ``reap_swarms`` (every 5 s) takes back tasks whose lease expired and ticks every active swarm, which also
  enforces global timeouts and picks up a tick lost between a commit and an enqueue.

Active swarms are listed in one Redis set (members ``<workspace id>:<swarm id>``) so the reaper visits only
them rather than every workspace's schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import cast

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.live.bus import EventBus, EventType, Topic
from app.queues import JobContext, Queue, cron, job
from app.sandbox.step import StepControl, StepEvent
from app.swarms import scheduler
from app.swarms.agent_executor import executor_for
from app.swarms.executor import TaskOutcome, TaskRun, with_rules
from app.swarms.scheduler import Dispatch, Note

log = logging.getLogger(__name__)

ACTIVE_KEY = "marid:swarms:active"
# Time spent in scheduling transactions by this process (the benchmark reads it): seconds, calls.
timings = {"tick": [0.0, 0], "begin": [0.0, 0], "finish": [0.0, 0], "queued": [0.0, 0]}
# A task's job goes on with the next dispatched task for this long; then it hands over to the queue again (arq's
# job timeout bounds one job, and a task's own timeout is at most an hour).
CHAIN_BUDGET = timedelta(minutes=10)


def _now() -> datetime:
    return datetime.now(UTC)


def _waited(enqueued: datetime) -> None:
    if enqueued.tzinfo is None:
        enqueued = enqueued.replace(tzinfo=UTC)
    timings["queued"][0] += max(0.0, (_now() - enqueued).total_seconds())
    timings["queued"][1] += 1


def _timed(name: str, started: float) -> None:
    timings[name][0] += time.perf_counter() - started
    timings[name][1] += 1


def _member(workspace_id: str, swarm_id: str) -> str:
    return f"{workspace_id}:{swarm_id}"


async def mark_active(redis: Redis, workspace_id: str, swarm_id: str, active: bool) -> None:
    """List or unlist a swarm for the reaper (redis-py types set commands as sync-or-async: say which)."""
    if active:
        await cast("Awaitable[int]", redis.sadd(ACTIVE_KEY, _member(workspace_id, swarm_id)))
    else:
        await cast("Awaitable[int]", redis.srem(ACTIVE_KEY, _member(workspace_id, swarm_id)))


async def active_swarms(redis: Redis) -> list[tuple[str, str]]:
    members = await cast("Awaitable[set[bytes | str]]", redis.smembers(ACTIVE_KEY))
    found = []
    for raw in members:
        workspace_id, _, swarm_id = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
        found.append((workspace_id, swarm_id))
    return found


async def publish(bus: EventBus, workspace_id: str, swarm_id: str, notes: list[Note]) -> None:
    topic = Topic.swarm(swarm_id)
    for note in notes:
        try:
            await bus.publish(workspace_id, topic, note.type, note.payload)
        except Exception:  # Postgres holds the state: pages re-read it when their stream reconnects
            log.warning("could not publish %s for swarm %s", note.type, swarm_id, exc_info=True)


# Records a task's outcome in the caller's transaction; the events to publish after it commits.
# (Its second argument: whether the caller holds the workspace's lock.)
Finishing = Callable[[AsyncSession, bool], Awaitable[list[Note]]]
# Swarms this process is ticking now -> whether another pass was asked for meanwhile; and the jobs of this
# process waiting for that pass to hand them a task to run next.
_ticking: dict[tuple[str, str], bool] = {}
_hungry: dict[tuple[str, str], list[asyncio.Future[Dispatch | None]]] = {}


async def advance(
    ctx: JobContext, workspace_id: str, swarm_id: str, *, keep: bool = False, finishing: Finishing | None = None
) -> tuple[scheduler.Tick, Dispatch | None]:
    """Record ``finishing`` (a task's outcome) and tick the swarm, then publish and enqueue what the tick
    decided (after its commit). With ``keep``, one dispatched task is handed back instead of enqueued: the
    caller (a task's job) runs it at once itself.

    Ticks of one swarm in one process are coalesced: while one runs, another caller records its outcome on its
    own and only asks for one more pass (with ``keep``, it waits for that pass to hand it a task). Thirty tasks
    finishing together cost a couple of ticks, not thirty queued on the workspace's lock (ticks of other
    processes still serialize on it). Otherwise the outcome and the tick share one transaction.
    """
    wanted = (workspace_id, swarm_id)
    if finishing is not None and wanted in _ticking:
        await _finish_alone(ctx, workspace_id, swarm_id, finishing)
        finishing = None
    if wanted in _ticking:
        _ticking[wanted] = True
        if not keep:
            return scheduler.Tick(), None
        waiting: asyncio.Future[Dispatch | None] = asyncio.get_running_loop().create_future()
        _hungry.setdefault(wanted, []).append(waiting)
        return scheduler.Tick(), await waiting
    _ticking[wanted] = False
    kept: Dispatch | None = None
    result = scheduler.Tick()
    try:
        while True:
            result = await _tick_once(ctx, workspace_id, swarm_id, finishing)
            finishing = None
            dispatch = list(result.dispatch)
            if keep and kept is None and dispatch:
                kept = dispatch.pop(0)
            hungry = _hungry.get(wanted, [])
            while hungry and dispatch:
                hungry.pop(0).set_result(dispatch.pop(0))
            for each in dispatch:
                job_id = f"swarm-task:{workspace_id}:{swarm_id}:{each.key}:{each.attempt}"
                await ctx["jobs"].enqueue(run_swarm_task.with_options(job_id=job_id), workspace_id, swarm_id,
                                          each.key, each.attempt)  # fmt: skip
            if result.finished or not _ticking[wanted]:
                return result, kept
            _ticking[wanted] = False
    finally:
        del _ticking[wanted]
        for waiting in _hungry.pop(wanted, []):
            if not waiting.done():
                waiting.set_result(None)


async def _tick_once(
    ctx: JobContext, workspace_id: str, swarm_id: str, finishing: Finishing | None = None
) -> scheduler.Tick:
    started = time.perf_counter()
    notes: list[Note] = []
    async with ctx["db"].tenant_session(workspace_id) as session:
        settings = None
        if finishing is not None:
            # The workspace's lock first, as every tick and cancel takes it: no deadlock with a stop.
            settings = await scheduler.limits_row(session, lock=True)
            notes = await finishing(session, True)
        result = await scheduler.tick(session, swarm_id, now=_now(), settings=settings)
    _timed("tick", started)
    await publish(ctx["bus"], workspace_id, swarm_id, notes + result.notes)
    if result.finished:
        await mark_active(ctx["bus"].redis, workspace_id, swarm_id, False)
    return result


async def _finish_alone(ctx: JobContext, workspace_id: str, swarm_id: str, finishing: Finishing) -> None:
    started = time.perf_counter()
    async with ctx["db"].tenant_session(workspace_id) as session:
        notes = await finishing(session, False)
    _timed("finish", started)
    await publish(ctx["bus"], workspace_id, swarm_id, notes)


@job(Queue.SHORT)
async def advance_swarm(ctx: JobContext, workspace_id: str, swarm_id: str) -> int:
    """One scheduling pass (after a start, a cancel, at the global deadline); the number of tasks dispatched."""
    return len((await advance(ctx, workspace_id, swarm_id))[0].dispatch)


@job(Queue.LONG, max_tries=1)
async def run_swarm_task(ctx: JobContext, workspace_id: str, swarm_id: str, key: str, attempt: int) -> str:
    """Run one attempt of one task (a stale attempt, taken back or cancelled, does nothing); then, while its
    time budget lasts, a task the following tick dispatched, with no queue hop (a slot goes straight on)."""
    if "enqueue_time" in ctx:
        _waited(ctx["enqueue_time"])
    started = time.perf_counter()
    async with ctx["db"].tenant_session(workspace_id) as session:
        claimed = await scheduler.begin(session, swarm_id, key, attempt, worker_id=ctx["worker_id"], now=_now())
    _timed("begin", started)
    if claimed is None:
        return "stale"
    current: Dispatch | None = Dispatch(key, attempt, claimed)
    budget = time.monotonic() + CHAIN_BUDGET.total_seconds()
    ran = 0
    while current is not None:
        record = await _attempt(ctx, workspace_id, swarm_id, current)
        ran += 1
        keep = time.monotonic() < budget
        _, current = await advance(ctx, workspace_id, swarm_id, keep=keep, finishing=record)
    return f"ran {ran}"


async def _attempt(ctx: JobContext, workspace_id: str, swarm_id: str, dispatch: Dispatch) -> Finishing | None:
    """Run the attempt; how to record its outcome (None when the task was cancelled or taken back meanwhile)."""
    db, bus = ctx["db"], ctx["bus"]
    key, attempt, task = dispatch.key, dispatch.attempt, dispatch.task
    run = TaskRun(
        workspace_id=workspace_id,
        swarm_id=swarm_id,
        key=key,
        attempt=attempt,
        title=task.title,
        agent_id=task.agent_id,
        prompt=with_rules(task.execution_prompt, task.deviation_rules),
        model=task.model,
        timeout_seconds=task.timeout_seconds,
    )
    topic = Topic.swarm(swarm_id)
    await bus.publish(
        workspace_id,
        topic,
        EventType.SWARM_TASK_STARTED,
        {"swarmId": swarm_id, "taskKey": key, "taskTitle": task.title, "runId": run.step_id, "attempt": attempt},
    )
    output: list[str] = []

    async def relay(event: StepEvent) -> None:
        # The executor publishes the step's events itself (batched); the task keeps its text for its page.
        if event.type == "output":
            output.append(str(event.data.get("text", "")))

    control = StepControl()
    lost = asyncio.Event()

    async def keep_lease() -> None:
        while True:
            await asyncio.sleep(scheduler.HEARTBEAT.total_seconds())
            try:
                async with db.tenant_session(workspace_id) as session:
                    held = await scheduler.renew(session, swarm_id, key, attempt, now=_now())
            except Exception:
                log.warning("could not renew the lease of %s/%s", swarm_id, key, exc_info=True)
                continue
            if not held:
                lost.set()
                control.abort("the task was cancelled or taken back")
                return

    keeper = asyncio.create_task(keep_lease())
    try:
        outcome = await executor_for(ctx).run(run, relay, control)
    except Exception as exc:
        log.exception("swarm task %s/%s attempt %d failed in its executor", swarm_id, key, attempt)
        outcome = TaskOutcome(ok=False, error=f"the task could not run: {type(exc).__name__}")
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
    if lost.is_set():
        return None
    text = "".join(output) or outcome.summary

    async def record(session: AsyncSession, locked: bool) -> list[Note]:
        now = _now()
        return await scheduler.finish(session, swarm_id, key, attempt, outcome, output=text, now=now, locked=locked)

    return record


@job(Queue.SHORT)
async def reap_swarms(ctx: JobContext) -> int:
    """Take back expired leases and tick every active swarm; the number of tasks taken back."""
    taken = 0
    for workspace_id, swarm_id in await active_swarms(ctx["bus"].redis):
        try:
            async with ctx["db"].tenant_session(workspace_id) as session:
                keys = await scheduler.reap(session, swarm_id, now=_now())
            if keys:
                taken += len(keys)
                log.warning("swarm %s: took back %s (lease expired)", swarm_id, ", ".join(keys))
            await advance(ctx, workspace_id, swarm_id)
        except Exception:
            log.exception("could not reap swarm %s", swarm_id)
    return taken


reap_swarms_regularly = cron(reap_swarms, second=set(range(0, 60, 5)), run_at_startup=True)
