"""The swarm scheduler's transitions, each one transaction on the workspace's tables (the jobs commit).

Every transition is a conditional UPDATE on the rows it expects, so racing workers cannot complete a task twice:

- :func:`tick` (under the workspace's swarm lock): stop the swarm if cancelled or out of time, otherwise mark
  ready tasks running, up to the swarm's and the workspace's concurrency, and finish the swarm when nothing is
  left. It returns the dispatches (key, attempt) for the caller to enqueue after its commit.
- :func:`begin` / :func:`renew`: the task's job takes and keeps its lease; a lost lease means stop.
- :func:`finish`: complete the task (its dependents may become ready) or fail it (a retry, or every descendant
  skipped with the reason), only if it is still running under this attempt.
- :func:`reap`: tasks whose lease expired (their worker died) are made ready again.

Events are returned as :class:`Note` values and published by the caller after the commit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.live.bus import EventType
from app.swarms import statements
from app.swarms.executor import TaskOutcome, step_id_of
from app.swarms.models import Swarm, SwarmSettings, SwarmTask
from app.swarms.spec import SwarmSpec, levels_of

# A dispatched task's lease: its job renews it every HEARTBEAT; the reaper takes back a task LEASE after the
# last renewal (a dead worker's tasks wait at most that long, plus a reaper period).
LEASE = timedelta(seconds=20)
HEARTBEAT = timedelta(seconds=2)
MAX_OUTPUT_CHARS = 100_000


@dataclass(frozen=True)
class Note:
    """An event to publish on the swarm's topic once the transaction is committed."""

    type: EventType
    payload: dict[str, Any]


@dataclass(frozen=True)
class Claimed:
    """What an attempt's job needs of its task and swarm (read with the lease, in one statement)."""

    title: str
    execution_prompt: str
    model: str | None
    timeout_seconds: int
    agent_id: str
    deviation_rules: str


@dataclass(frozen=True)
class Dispatch:
    key: str
    attempt: int
    task: Claimed


@dataclass
class Tick:
    dispatch: list[Dispatch] = field(default_factory=list)
    notes: list[Note] = field(default_factory=list)
    finished: bool = False
    # No such swarm here: deleted, or its start has not committed yet (the reaper may see it listed before).
    missing: bool = False


def _heights(spec: SwarmSpec) -> dict[str, int]:
    """Longest chain of tasks from each task to a leaf (1 for a leaf)."""
    level = levels_of(spec.tasks)
    dependents: dict[str, list[str]] = {t.key: [] for t in spec.tasks}
    for t in spec.tasks:
        for d in t.dependencies:
            dependents[d].append(t.key)
    height: dict[str, int] = {}
    for key in sorted(level, key=level.__getitem__, reverse=True):
        height[key] = 1 + max((height[c] for c in dependents[key]), default=0)
    return height


async def create(
    session: AsyncSession,
    swarm_id: str,
    spec: SwarmSpec,
    *,
    now: datetime,
    origin: str,
    created_by_label: str,
) -> Swarm:
    """Insert the swarm and its tasks (roots ready, the rest pending)."""
    level = levels_of(spec.tasks)
    height = _heights(spec)
    dependents: dict[str, list[str]] = {t.key: [] for t in spec.tasks}
    for t in spec.tasks:
        for d in t.dependencies:
            dependents[d].append(t.key)
    swarm = Swarm(
        id=swarm_id,
        title=spec.title or f"{len(spec.tasks)} tasks for {spec.agent_id}",
        agent_id=spec.agent_id,
        status="running",
        max_concurrent=spec.max_concurrent,
        global_timeout_seconds=spec.global_timeout_seconds,
        deviation_rules=spec.deviation_rules,
        origin=origin,
        created_by_label=created_by_label[:200],
        created_at=now,
        deadline_at=now + timedelta(seconds=spec.global_timeout_seconds),
    )
    session.add(swarm)
    await session.flush()
    rows = [
        {
            "swarm_id": swarm_id,
            "key": t.key,
            "position": n,
            "title": t.title,
            "execution_prompt": t.execution_prompt,
            "dependencies": list(t.dependencies),
            "dependents": dependents[t.key],
            "model": t.model,
            "timeout_seconds": t.timeout_seconds,
            "max_retries": t.max_retries,
            "level": level[t.key],
            "height": height[t.key],
            "status": "pending" if t.dependencies else "ready",
            "waiting_on": len(t.dependencies),
            "ready_at": None if t.dependencies else now,
        }
        for n, t in enumerate(spec.tasks)
    ]
    await session.execute(insert(SwarmTask), rows)
    return swarm


async def limits_row(session: AsyncSession, *, lock: bool = False) -> SwarmSettings:
    """The workspace's swarm settings, created with the defaults on first use; ``lock``: the scheduling lock."""
    query = select(SwarmSettings).where(SwarmSettings.id == 1)
    if lock:
        query = query.with_for_update()
    found = (await session.execute(query)).scalar_one_or_none()
    if found is None:
        await session.execute(pg_insert(SwarmSettings).values(id=1).on_conflict_do_nothing())
        found = (await session.execute(query)).scalar_one()
    return found


async def lock_workspace(session: AsyncSession) -> int:
    """Take the workspace's scheduling lock (every pass, finish and cancel does, first); its concurrency limit."""
    found = (await (await session.connection()).execute(statements.LOCK_WORKSPACE)).scalar_one_or_none()
    if found is None:  # the first swarm of the workspace: its settings row is made with the defaults
        return (await limits_row(session, lock=True)).workspace_concurrency
    return int(found)


async def tick(
    session: AsyncSession, swarm_id: str, *, now: datetime, workspace_concurrency: int | None = None
) -> Tick:
    """One scheduling pass over a swarm (see the module's docstring); ``workspace_concurrency``: the caller
    already holds the workspace's lock (:func:`lock_workspace` gave it).

    Every change to a swarm's state (a pass, a finishing task, a cancel) happens under the workspace's lock, so
    the swarm row needs no lock of its own here. The usual pass is one statement (:func:`_dispatch`); only a pass
    that starts nothing looks at the whole swarm, to stop it or to close it.
    """
    result = Tick()
    # One lock per workspace: the count of running tasks across its swarms is exact while it is held.
    if workspace_concurrency is None:
        workspace_concurrency = await lock_workspace(session)
    result.dispatch = await _dispatch(session, swarm_id, workspace_concurrency, now=now)
    if result.dispatch:
        result.notes = [_started(swarm_id, each) for each in result.dispatch]
        return result
    swarm = await session.get(Swarm, swarm_id, populate_existing=True)
    if swarm is None or swarm.status != "running":
        result.finished = True
        result.missing = swarm is None
        return result
    if swarm.cancel_requested or now >= swarm.deadline_at:
        timed_out = not swarm.cancel_requested
        reason = f"the swarm's global timeout of {swarm.global_timeout_seconds} s ran out" if timed_out else "cancelled"
        result.notes += await stop(
            session, swarm, now=now, reason=reason, status="failed" if timed_out else "cancelled"
        )
        result.finished = True
        return result
    # Nothing started: is anything left to wait for?
    left = await session.scalar(
        select(func.count())
        .select_from(SwarmTask)
        .where(SwarmTask.swarm_id == swarm_id, SwarmTask.status.in_(("pending", "ready", "running")))
    )
    if not left:
        failed = await session.scalar(
            select(func.count())
            .select_from(SwarmTask)
            .where(SwarmTask.swarm_id == swarm_id, SwarmTask.status == "failed")
        )
        status = "failed" if failed else "completed"
        error = f"{failed} task(s) failed" if failed else None
        result.notes += await _close(session, swarm, status=status, now=now, error=error)
        result.finished = True
    return result


async def _dispatch(
    session: AsyncSession, swarm_id: str, workspace_concurrency: int, *, now: datetime
) -> list[Dispatch]:
    """Start what the free slots allow (:func:`app.swarms.statements.dispatch`)."""
    # The clock read as late as possible: a task that finished just before this pass ended before this start
    # (the recorded times never show more tasks at once than ran).
    dispatched_at = max(now, datetime.now(UTC))
    started = await (await session.connection()).execute(
        statements.DISPATCH,
        {
            "p_swarm_id": swarm_id,
            "p_now": now,
            "p_workspace_concurrency": workspace_concurrency,
            "p_started_at": dispatched_at,
            "p_lease_expires_at": dispatched_at + LEASE,
        },
    )
    return [
        Dispatch(key, attempt, Claimed(title, prompt, model, timeout, agent_id, rules))
        for key, attempt, title, prompt, model, timeout, agent_id, rules in started.all()
    ]


def _started(swarm_id: str, dispatch: Dispatch) -> Note:
    """``SWARM_TASK_STARTED``, published with the pass that marked the task running."""
    key, attempt = dispatch.key, dispatch.attempt
    return Note(
        EventType.SWARM_TASK_STARTED,
        {
            "swarmId": swarm_id,
            "taskKey": key,
            "taskTitle": dispatch.task.title,
            "runId": step_id_of(swarm_id, key, attempt),
            "attempt": attempt,
        },
    )


async def summary_of(session: AsyncSession, swarm: Swarm, *, now: datetime) -> dict[str, Any]:
    """The contract's summary: counts, the total duration, each task's result."""
    tasks = (
        (await session.execute(select(SwarmTask).where(SwarmTask.swarm_id == swarm.id).order_by(SwarmTask.position)))
        .scalars()
        .all()
    )
    count = {s: sum(1 for t in tasks if t.status == s) for s in ("completed", "failed", "skipped", "cancelled")}
    return {
        "totalTasks": len(tasks),
        **count,
        "totalDurationMs": int((now - swarm.created_at).total_seconds() * 1000),
        "costUsd": str(sum((t.cost_usd for t in tasks), Decimal(0))),
        "taskResults": [
            {
                "key": t.key,
                "title": t.title,
                "status": t.status,
                "durationMs": _duration_ms(t),
                **({"error": t.error} if t.error else {}),
            }
            for t in tasks
        ],
    }


def _duration_ms(task: SwarmTask) -> int | None:
    if task.started_at is None or task.finished_at is None:
        return None
    return int((task.finished_at - task.started_at).total_seconds() * 1000)


async def _close(session: AsyncSession, swarm: Swarm, *, status: str, now: datetime, error: str | None) -> list[Note]:
    swarm.status = status
    swarm.finished_at = now
    swarm.error = error
    await session.flush()
    summary = await summary_of(session, swarm, now=now)
    # Kept small in the row and the event: the task results are re-read from the tasks table by the pages.
    swarm.summary = {k: v for k, v in summary.items() if k != "taskResults"}
    if status == "completed":
        return [Note(EventType.SWARM_COMPLETED, {"swarmId": swarm.id, "status": status, "summary": summary})]
    return [Note(EventType.SWARM_FAILED, {"swarmId": swarm.id, "status": status, "error": error, "summary": summary})]


async def stop(session: AsyncSession, swarm: Swarm, *, now: datetime, reason: str, status: str) -> list[Note]:
    """Cancel every unfinished task (running ones' jobs see it at their next renewal and abort their sandbox)."""
    stopped = await session.execute(
        update(SwarmTask)
        .where(SwarmTask.swarm_id == swarm.id, SwarmTask.status.in_(("pending", "ready", "running")))
        .values(status="cancelled", finished_at=now, error=reason, lease_expires_at=None)
        .returning(SwarmTask.key)
    )
    notes = [
        Note(EventType.STEP_CANCELLED, {"swarmId": swarm.id, "taskKey": key, "reason": reason})
        for key in stopped.scalars().all()
    ]
    return notes + await _close(session, swarm, status=status, now=now, error=reason)


async def begin(
    session: AsyncSession, swarm_id: str, key: str, attempt: int, *, worker_id: str, now: datetime
) -> Claimed | None:
    """Take the lease of this attempt; None when the attempt is no longer the task's (stale job)."""
    taken = await (await session.connection()).execute(
        statements.BEGIN,
        {"p_swarm_id": swarm_id, "p_key": key, "p_attempt": attempt, "p_worker": worker_id[:64], "p_now": now,
         "p_lease_expires_at": now + LEASE},
    )  # fmt: skip
    row = taken.one_or_none()
    if row is None:
        return None
    return Claimed(*row)


async def renew(session: AsyncSession, swarm_id: str, key: str, attempt: int, *, now: datetime) -> bool:
    """Extend the lease; False when the task was cancelled or taken back (the job must stop)."""
    renewed = await (await session.connection()).execute(
        statements.RENEW,
        {"p_swarm_id": swarm_id, "p_key": key, "p_attempt": attempt, "p_lease_expires_at": now + LEASE},
    )
    return renewed.scalar_one_or_none() is not None


@dataclass(frozen=True)
class Recorded:
    """What recording an outcome gave: the events to publish, and the workspace's concurrency (read with its lock)."""

    notes: list[Note]
    workspace_concurrency: int


async def finish(
    session: AsyncSession,
    swarm_id: str,
    key: str,
    attempt: int,
    outcome: TaskOutcome,
    *,
    output: str,
    now: datetime,
) -> Recorded:
    """Take the workspace's lock and record the attempt's outcome if the task is still running under it
    (:func:`app.swarms.statements.finish`, one statement); no pass or stop of the swarm runs meanwhile."""
    error = None if outcome.ok else (outcome.error or "the task failed")[:4000]
    values = {
        "p_swarm_id": swarm_id,
        "p_key": key,
        "p_attempt": attempt,
        "p_now": now,
        "p_output": output[-MAX_OUTPUT_CHARS:],
        "p_outputs": dict(outcome.outputs),
        "p_cost_usd": outcome.cost_usd,
        "p_input_tokens": outcome.input_tokens,
        "p_output_tokens": outcome.output_tokens,
        "p_sandbox_id": outcome.sandbox_id,
        "p_error": error,
    }
    statement = statements.FINISH_OK if outcome.ok else statements.FINISH_FAILED
    connection = await session.connection()
    row = (await connection.execute(statement, values)).one_or_none()
    if row is None:  # no settings row to lock yet: make it (with the defaults), then record
        await limits_row(session, lock=True)
        row = (await connection.execute(statement, values)).one()
    concurrency, new_status, title, started_at, _dependents, failures, max_retries = row
    if new_status is None:
        return Recorded([], concurrency)  # cancelled, timed out or taken back meanwhile: this attempt no longer counts
    duration = int((now - (started_at or now)).total_seconds() * 1000)
    base = {"swarmId": swarm_id, "taskKey": key, "taskTitle": title, "attempt": attempt, "durationMs": duration}
    return Recorded(await _outcome_notes(session, swarm_id, key, new_status, base, outcome, error, failures,
                                         max_retries, now=now), concurrency)  # fmt: skip


async def _outcome_notes(
    session: AsyncSession,
    swarm_id: str,
    key: str,
    new_status: str,
    base: dict[str, Any],
    outcome: TaskOutcome,
    error: str | None,
    failures: int,
    max_retries: int,
    *,
    now: datetime,
) -> list[Note]:
    if new_status == "completed":
        return [Note(EventType.SWARM_TASK_COMPLETED, {**base, "outputs": dict(outcome.outputs)})]
    if new_status == "ready":
        return [Note(EventType.STEP_RETRYING, {**base, "error": error, "retry": failures, "maxRetries": max_retries})]
    notes = [Note(EventType.SWARM_TASK_FAILED, {**base, "error": error, "outputs": dict(outcome.outputs)})]
    return notes + await _skip_descendants(session, swarm_id, key, now=now)


async def _skip_descendants(session: AsyncSession, swarm_id: str, failed: str, *, now: datetime) -> list[Note]:
    rows = (
        await session.execute(select(SwarmTask.key, SwarmTask.dependents).where(SwarmTask.swarm_id == swarm_id))
    ).all()
    dependents: Mapping[str, list[str]] = {key: list(deps) for key, deps in rows}
    below: list[str] = []
    seen = {failed}
    work = list(dependents.get(failed, ()))
    while work:
        key = work.pop()
        if key in seen:
            continue
        seen.add(key)
        below.append(key)
        work.extend(dependents.get(key, ()))
    if not below:
        return []
    reason = f"skipped: task {failed!r}, which it depends on, failed"
    skipped = await session.execute(
        update(SwarmTask)
        .where(SwarmTask.swarm_id == swarm_id, SwarmTask.key.in_(below), SwarmTask.status.in_(("pending", "ready")))
        .values(status="skipped", finished_at=now, error=reason)
        .returning(SwarmTask.key)
    )
    return [
        Note(
            EventType.SWARM_TASK_SKIPPED, {"swarmId": swarm_id, "taskKey": key, "reason": reason, "failedTask": failed}
        )
        for key in skipped.scalars().all()
    ]


async def reap(session: AsyncSession, swarm_id: str, *, now: datetime) -> list[str]:
    """Make ready again the running tasks whose lease expired (their worker died or never got the job)."""
    taken = await session.execute(
        update(SwarmTask)
        .where(
            SwarmTask.swarm_id == swarm_id,
            SwarmTask.status == "running",
            SwarmTask.lease_expires_at < now,
        )
        .values(status="ready", ready_at=now, lease_owner=None, lease_expires_at=None)
        .returning(SwarmTask.key)
    )
    return list(taken.scalars().all())
