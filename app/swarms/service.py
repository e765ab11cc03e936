"""Swarms as the pages, the API, the CLI and the ``swarm_execute`` tool use them: start, list, read, cancel.

Services take typed arguments and never commit: the caller's unit of work does
(``app.audit.unit_of_work.workspace_change``). After the commit the caller calls :func:`kick_off` (start) or
:func:`nudge` (cancel), which put the swarm in the worker's hands; a crash in between is harmless, because the
swarm was listed as active (a Redis set the reaper reads every few seconds) before its commit.
"""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.service import find_agent
from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid, NotFound, Refused
from app.live.bus import EventBus, EventType, Topic
from app.queues import Enqueuer
from app.swarms import scheduler
from app.swarms.jobs import advance_swarm, mark_active, publish
from app.swarms.models import Swarm, SwarmSettings, SwarmTask
from app.swarms.spec import Problem, SwarmLimits, SwarmSpec, load_text, parse_request

ORIGINS = ("ui", "api", "cli", "agent")


class SwarmInvalid(Invalid):
    """A request with problems: ``problems`` lists every one (the API returns them all)."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        errors: dict[str, str] = {}
        for problem in problems:
            field = problem.path or "_form"
            errors[field] = f"{errors[field]}; {problem.message}" if field in errors else problem.message
        super().__init__(errors)
        self.problems = tuple(problems)


def new_swarm_id() -> str:
    return f"swarm_{secrets.token_hex(6)}"


async def limits_of(session: AsyncSession) -> SwarmLimits:
    """The workspace's limits, read only (a page that shows them changes nothing): the defaults without a row."""
    row = await session.get(SwarmSettings, 1)
    if row is None:
        return SwarmLimits()
    return SwarmLimits(max_tasks=row.max_tasks, max_concurrent=row.max_concurrent)


async def check_request(session: AsyncSession, data: Any) -> SwarmSpec:
    """The request as a spec, or :class:`SwarmInvalid` with every problem (the agent must exist here)."""
    spec, problems = parse_request(data, await limits_of(session))
    agent_id = data.get("agent_id") or data.get("agentId") if isinstance(data, dict) else None
    if isinstance(agent_id, str) and agent_id and await find_agent(session, agent_id.strip()) is None:
        problems.append(Problem("agent_id", "unknown_agent", f"this workspace has no agent {agent_id!r}"))
    if problems or spec is None:
        raise SwarmInvalid(problems)
    return spec


async def check_text(session: AsyncSession, text: str) -> SwarmSpec:
    data, problems = load_text(text)
    if problems:
        raise SwarmInvalid(problems)
    return await check_request(session, data)


async def start_swarm(
    session: AsyncSession,
    bus: EventBus,
    workspace_id: str,
    actor: Actor,
    data: Any,
    *,
    origin: str = "ui",
) -> Swarm:
    """Validate and create a swarm (its root tasks ready); call :func:`kick_off` after the commit."""
    if origin not in ORIGINS:
        raise ValueError(f"unknown origin {origin!r}")
    spec = await check_request(session, data)
    swarm_id = new_swarm_id()
    # Listed before the commit: if this process dies after it, the reaper still finds and starts the swarm.
    await mark_active(bus.redis, workspace_id, swarm_id, True)
    swarm = await scheduler.create(
        session, swarm_id, spec, now=datetime.now(UTC), origin=origin, created_by_label=actor.label
    )
    await record_in_workspace(
        session,
        "swarm.started",
        actor,
        {"swarm_id": swarm_id, "title": swarm.title, "tasks": len(spec.tasks), "agent_id": spec.agent_id},
    )
    return swarm


async def kick_off(jobs: Enqueuer, bus: EventBus, workspace_id: str, swarm: Swarm) -> None:
    """After the start's commit: announce the swarm, tick it now and again at its global deadline."""
    await bus.publish(
        workspace_id,
        Topic.swarm(swarm.id),
        EventType.SWARM_LAUNCHED,
        {"swarmId": swarm.id, "title": swarm.title, "agentId": swarm.agent_id},
    )
    await jobs.enqueue(advance_swarm, workspace_id, swarm.id)
    deadline = advance_swarm.with_options(
        job_id=f"swarm-deadline:{workspace_id}:{swarm.id}",
        defer_by=timedelta(seconds=swarm.global_timeout_seconds + 1),
    )
    await jobs.enqueue(deadline, workspace_id, swarm.id)


async def get_swarm(session: AsyncSession, swarm_id: str) -> Swarm:
    swarm = await session.get(Swarm, swarm_id)
    if swarm is None:
        raise NotFound("No such swarm in this workspace.")
    return swarm


async def tasks_of(session: AsyncSession, swarm_id: str) -> list[SwarmTask]:
    query = select(SwarmTask).where(SwarmTask.swarm_id == swarm_id).order_by(SwarmTask.position)
    return list((await session.execute(query)).scalars().all())


async def get_task(session: AsyncSession, swarm_id: str, key: str) -> SwarmTask:
    task = await session.get(SwarmTask, (swarm_id, key))
    if task is None:
        raise NotFound("No such task in this swarm.")
    return task


@dataclass(frozen=True)
class SwarmRow:
    swarm: Swarm
    counts: dict[str, int]
    cost_usd: Decimal

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def row_of(swarm: Swarm, tasks: Sequence[SwarmTask]) -> SwarmRow:
    counts: dict[str, int] = {}
    for task in tasks:
        counts[task.status] = counts.get(task.status, 0) + 1
    return SwarmRow(swarm, counts, sum((t.cost_usd for t in tasks), Decimal(0)))


async def list_swarms(
    session: AsyncSession, *, status: str | None = None, limit: int = 50, before: datetime | None = None
) -> list[SwarmRow]:
    query = select(Swarm).order_by(Swarm.created_at.desc()).limit(limit)
    if status:
        query = query.where(Swarm.status == status)
    if before is not None:
        query = query.where(Swarm.created_at < before)
    swarms = list((await session.execute(query)).scalars().all())
    if not swarms:
        return []
    counted = await session.execute(
        select(SwarmTask.swarm_id, SwarmTask.status, func.count(), func.sum(SwarmTask.cost_usd))
        .where(SwarmTask.swarm_id.in_([s.id for s in swarms]))
        .group_by(SwarmTask.swarm_id, SwarmTask.status)
    )
    counts: dict[str, dict[str, int]] = {s.id: {} for s in swarms}
    costs: dict[str, Decimal] = {s.id: Decimal(0) for s in swarms}
    for swarm_id, task_status, count, cost in counted.all():
        counts[swarm_id][task_status] = count
        costs[swarm_id] += cost or Decimal(0)
    return [SwarmRow(s, counts[s.id], costs[s.id]) for s in swarms]


async def cancel_swarm(session: AsyncSession, workspace_id: str, actor: Actor, swarm_id: str) -> list[scheduler.Note]:
    """Cancel a running swarm: every unfinished task is cancelled; running ones' jobs abort their sandboxes
    at their next lease renewal. Returns the events to publish after the commit (:func:`nudge`)."""
    # The scheduling lock first, in the order ticks take their locks (no deadlock with a finishing task).
    await scheduler.limits_row(session, lock=True)
    swarm = (await session.execute(select(Swarm).where(Swarm.id == swarm_id).with_for_update())).scalar_one_or_none()
    if swarm is None:
        raise NotFound("No such swarm in this workspace.")
    if swarm.status != "running":
        raise Refused(f"This swarm has already {'finished' if swarm.status != 'cancelled' else 'been cancelled'}.")
    swarm.cancel_requested = True
    notes = await scheduler.stop(session, swarm, now=datetime.now(UTC), reason="cancelled", status="cancelled")
    await record_in_workspace(session, "swarm.cancelled", actor, {"swarm_id": swarm_id, "title": swarm.title})
    return notes


async def nudge(bus: EventBus, workspace_id: str, swarm_id: str, notes: list[scheduler.Note]) -> None:
    await publish(bus, workspace_id, swarm_id, notes)
    await mark_active(bus.redis, workspace_id, swarm_id, False)
