"""The swarm scheduler's jobs: advance a swarm (short queue), run one task attempt (long queue), reap leases.

- ``advance_swarm`` runs one :func:`app.swarms.scheduler.tick` and enqueues the tasks it dispatched, each as
  ``run_swarm_task`` with the job id ``swarm-task:<ws>:<swarm>:<key>:<attempt>`` (one job per attempt).
- ``run_swarm_task`` takes the attempt's lease, runs the executor while renewing it (a renewal that fails means
  the task was cancelled or taken back: the step is aborted, its sandbox destroyed), records the outcome with
  a conditional UPDATE and ticks the swarm itself, in one transaction; then, for up to its turn on the slot (the
  setting ``swarm_slot_turn_seconds``), it runs one of the tasks that tick dispatched (no queue hop between a
  task and the next one in its slot). After its turn the next task is queued behind the jobs already waiting,
  other workspaces' included.
- ``reap_swarms`` (every 5 s) takes back tasks whose lease expired and ticks every active swarm, which also
  enforces global timeouts and picks up a tick lost between a commit and an enqueue.

Active swarms are listed in one Redis hash (``<workspace id>:<swarm id>`` -> when it was listed) so the reaper
visits only them rather than every workspace's schema.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import cast

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

from app.live.bus import EventBus, Topic
from app.queues import Enqueuer, JobContext, Queue, cron, job
from app.sandbox.step import StepControl, StepEvent
from app.swarms import scheduler
from app.swarms.agent_executor import executor_for
from app.swarms.executor import TaskOutcome, TaskRun, with_rules
from app.swarms.scheduler import Dispatch, Note

log = logging.getLogger(__name__)

# Swarms the reaper visits: a hash of "<workspace id>:<swarm id>" -> when it was listed (Unix seconds).
ACTIVE_KEY = "marid:swarms:listed"
# A listed swarm the reaper cannot see may still be starting (listed before its start commits, so that a crash
# after the commit cannot strand it): it is unlisted only once it has been missing for this long.
MISSING_GRACE = timedelta(minutes=2)
# Time spent in scheduling transactions by this process (the benchmark reads it): seconds, calls.
timings = {"tick": [0.0, 0], "begin": [0.0, 0], "queued": [0.0, 0]}


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
    """List or unlist a swarm for the reaper (redis-py types hash commands as sync-or-async: say which)."""
    if active:
        await cast("Awaitable[int]", redis.hset(ACTIVE_KEY, _member(workspace_id, swarm_id), str(int(time.time()))))
    else:
        await cast("Awaitable[int]", redis.hdel(ACTIVE_KEY, _member(workspace_id, swarm_id)))


async def active_swarms(redis: Redis) -> list[tuple[str, str, float]]:
    """The listed swarms: workspace id, swarm id, when it was listed (Unix seconds)."""
    listed = await cast("Awaitable[dict[bytes | str, bytes | str]]", redis.hgetall(ACTIVE_KEY))
    found = []
    for raw, since in listed.items():
        workspace_id, _, swarm_id = (raw.decode() if isinstance(raw, bytes) else raw).partition(":")
        found.append((workspace_id, swarm_id, float(since)))
    return found


async def publish(bus: EventBus, workspace_id: str, swarm_id: str, notes: list[Note]) -> None:
    """Publish a pass's events in order, in one round trip."""
    try:
        await bus.publish_many(workspace_id, Topic.swarm(swarm_id), [(note.type, note.payload) for note in notes])
    except Exception:  # Postgres holds the state: pages re-read it when their stream reconnects
        log.warning("could not publish %d event(s) for swarm %s", len(notes), swarm_id, exc_info=True)


async def enqueue_tasks(jobs: Enqueuer, workspace_id: str, swarm_id: str, dispatch: Sequence[Dispatch]) -> None:
    """Queue one job per dispatched attempt, side by side (each enqueue is a few Redis round trips)."""
    await asyncio.gather(
        *(
            jobs.enqueue(
                run_swarm_task.with_options(job_id=f"swarm-task:{workspace_id}:{swarm_id}:{each.key}:{each.attempt}"),
                workspace_id,
                swarm_id,
                each.key,
                each.attempt,
            )
            for each in dispatch
        )
    )


# Records a task's outcome in the caller's transaction; the events to publish after it commits.
# (The caller holds the workspace's lock.)
Finishing = Callable[[AsyncSession], Awaitable[scheduler.Recorded]]
# A job whose pass handed it nothing waits this long for a later pass of this process to hand it a task (one
# of those a finishing dependency makes ready) before it gives its slot back: no queue hop for that task.
LINGER = timedelta(seconds=1.5)


@dataclass
class _Swarm:
    """This process's scheduling of one swarm while a pass runs: whether another pass was asked for, the
    outcomes waiting to be recorded in it, and the jobs waiting for a task from it (or from any later pass)."""

    again: bool = False
    finished: bool = False
    outcomes: list[tuple[Finishing, asyncio.Future[None]]] = field(default_factory=list)
    hungry: list[asyncio.Future[Dispatch | None]] = field(default_factory=list)


_ticking: dict[tuple[str, str], _Swarm] = {}
_idle: dict[tuple[str, str], list[asyncio.Future[Dispatch | None]]] = {}


async def advance(
    ctx: JobContext, workspace_id: str, swarm_id: str, *, keep: bool = False, finishing: Finishing | None = None
) -> tuple[scheduler.Tick, Dispatch | None]:
    """Record ``finishing`` (a task's outcome) and tick the swarm, then publish and enqueue what the tick
    decided (after its commit). With ``keep``, one dispatched task is handed back instead of enqueued: the
    caller (a task's job) runs it at once itself.

    Passes over one swarm in one process are batched: while one runs, another caller leaves its outcome for the
    next pass and waits for it (with ``keep``, for the task that pass hands it). Thirty tasks finishing together
    cost a couple of transactions, not thirty queued on the workspace's lock (passes of other processes still
    serialize on it).
    """
    wanted = (workspace_id, swarm_id)
    running = _ticking.get(wanted)
    if running is not None:
        running.again = True
        if finishing is not None:
            recorded: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            running.outcomes.append((finishing, recorded))
        if keep:
            waiting: asyncio.Future[Dispatch | None] = asyncio.get_running_loop().create_future()
            running.hungry.append(waiting)
        if finishing is not None:
            await recorded  # raises what the pass that recorded it raised
        handed = await waiting if keep else None
        return scheduler.Tick(finished=running.finished), handed
    state = _ticking[wanted] = _Swarm()
    kept: Dispatch | None = None
    result = scheduler.Tick()
    try:
        own: list[Finishing] = [finishing] if finishing is not None else []
        while True:
            outcomes, state.outcomes = state.outcomes, []
            state.again = False
            try:
                result = await _tick_once(ctx, workspace_id, swarm_id, own + [f for f, _ in outcomes])
            except BaseException as failed:
                for _, recorded in outcomes:
                    recorded.set_exception(failed if isinstance(failed, Exception) else RuntimeError("cancelled"))
                raise
            state.finished = result.finished
            for _, recorded in outcomes:
                recorded.set_result(None)
            own = []
            dispatch = list(result.dispatch)
            if keep and kept is None and dispatch:
                kept = dispatch.pop(0)
            dispatch = _hand_over(state.hungry, dispatch)
            dispatch = _hand_over(_idle.get(wanted, []), dispatch)
            await enqueue_tasks(ctx["jobs"], workspace_id, swarm_id, dispatch)
            if result.finished or not state.again:
                break
    finally:
        del _ticking[wanted]
        for waiting in state.hungry:
            if not waiting.done():
                waiting.set_result(None)
        if result.finished:
            for waiting in _idle.pop(wanted, []):
                if not waiting.done():
                    waiting.set_result(None)
    return result, kept


def _hand_over(waiters: list[asyncio.Future[Dispatch | None]], dispatch: list[Dispatch]) -> list[Dispatch]:
    """Give dispatched tasks to waiting jobs, first come first served; the tasks left over."""
    while waiters and dispatch:
        waiting = waiters.pop(0)
        if not waiting.done():  # a lingering job may have given up meanwhile
            waiting.set_result(dispatch.pop(0))
    return dispatch


async def linger(workspace_id: str, swarm_id: str, seconds: float) -> Dispatch | None:
    """Wait up to ``seconds`` for a pass of this process to hand this job a task of the swarm."""
    waiting: asyncio.Future[Dispatch | None] = asyncio.get_running_loop().create_future()
    waiters = _idle.setdefault((workspace_id, swarm_id), [])
    waiters.append(waiting)
    try:
        return await asyncio.wait_for(asyncio.shield(waiting), seconds)
    except TimeoutError:
        if waiting.done() and not waiting.cancelled():
            return waiting.result()  # handed a task just as the wait ran out: it is ours to run
        waiting.cancel()
        return None
    finally:
        if waiting in waiters:
            waiters.remove(waiting)
        if not waiters and _idle.get((workspace_id, swarm_id)) is waiters:
            del _idle[(workspace_id, swarm_id)]


async def _tick_once(ctx: JobContext, workspace_id: str, swarm_id: str, outcomes: list[Finishing]) -> scheduler.Tick:
    started = time.perf_counter()
    notes: list[Note] = []
    async with ctx["db"].tenant_session(workspace_id) as session:
        # The workspace's lock first, as every pass and cancel takes it: no deadlock with a stop. Recording an
        # outcome takes it in the same statement.
        concurrency: int | None = None
        for finishing in outcomes:
            recorded = await finishing(session)
            notes += recorded.notes
            concurrency = recorded.workspace_concurrency
        if concurrency is None:
            concurrency = await scheduler.lock_workspace(session)
        result = await scheduler.tick(session, swarm_id, now=_now(), workspace_concurrency=concurrency)
    _timed("tick", started)
    await publish(ctx["bus"], workspace_id, swarm_id, notes + result.notes)
    if result.finished and not result.missing:
        await mark_active(ctx["bus"].redis, workspace_id, swarm_id, False)
    return result


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
    # Its turn on this slot: then the next task goes to the back of the queue, behind other workspaces' jobs.
    budget = time.monotonic() + ctx["settings"].swarm_slot_turn_seconds
    ran = 0
    while current is not None:
        record = await _attempt(ctx, workspace_id, swarm_id, current)
        ran += 1
        keep = time.monotonic() < budget
        tick, current = await advance(ctx, workspace_id, swarm_id, keep=keep, finishing=record)
        if current is None and keep and not tick.finished:
            current = await linger(workspace_id, swarm_id, LINGER.total_seconds())
    return f"ran {ran}"


async def _attempt(ctx: JobContext, workspace_id: str, swarm_id: str, dispatch: Dispatch) -> Finishing | None:
    """Run the attempt; how to record its outcome (None when the task was cancelled or taken back meanwhile)."""
    db = ctx["db"]
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
    # SWARM_TASK_STARTED went out with the pass that marked the task running.
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

    async def record(session: AsyncSession) -> scheduler.Recorded:
        return await scheduler.finish(session, swarm_id, key, attempt, outcome, output=text, now=_now())

    return record


@job(Queue.SHORT)
async def reap_swarms(ctx: JobContext) -> int:
    """Take back expired leases and tick every active swarm; the number of tasks taken back."""
    taken = 0
    for workspace_id, swarm_id, listed_at in await active_swarms(ctx["bus"].redis):
        try:
            async with ctx["db"].tenant_session(workspace_id) as session:
                keys = await scheduler.reap(session, swarm_id, now=_now())
            if keys:
                taken += len(keys)
                log.warning("swarm %s: took back %s (lease expired)", swarm_id, ", ".join(keys))
            result, _ = await advance(ctx, workspace_id, swarm_id)
            if result.missing and time.time() - listed_at > MISSING_GRACE.total_seconds():
                await mark_active(ctx["bus"].redis, workspace_id, swarm_id, False)  # its start never committed
        except Exception:
            log.exception("could not reap swarm %s", swarm_id)
    return taken


reap_swarms_regularly = cron(reap_swarms, second=set(range(0, 60, 5)), run_at_startup=True)
