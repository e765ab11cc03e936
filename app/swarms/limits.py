"""A workspace's swarm limits: how many tasks a swarm may have, how many of them run at once, and how many tasks
of all the workspace's swarms run at once.

The platform's ceilings are the defaults (500 tasks, 32 at once in a swarm, 32 across the workspace): they keep
the shared workers fair between workspaces (docs/swarms.md). A workspace's admins may set lower limits, say to
keep swarms small or their cost down; the pages and the API call :func:`save_limits` with typed values.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid
from app.swarms import scheduler
from app.swarms.models import SwarmSettings
from app.swarms.spec import DEFAULT_LIMITS


@dataclass(frozen=True)
class WorkspaceLimits:
    max_tasks: int
    max_concurrent: int
    workspace_concurrency: int


CEILINGS = WorkspaceLimits(
    max_tasks=DEFAULT_LIMITS.max_tasks,
    max_concurrent=DEFAULT_LIMITS.max_concurrent,
    workspace_concurrency=DEFAULT_LIMITS.max_concurrent,
)
LABELS = {
    "max_tasks": "Tasks in one swarm",
    "max_concurrent": "Tasks of one swarm at once",
    "workspace_concurrency": "Tasks of all swarms at once",
}


async def read_limits(session: AsyncSession) -> WorkspaceLimits:
    """The workspace's limits (the ceilings while it has set none); reading changes nothing."""
    row = await session.get(SwarmSettings, 1)
    if row is None:
        return CEILINGS
    return WorkspaceLimits(row.max_tasks, row.max_concurrent, row.workspace_concurrency)


def parse_limits(values: dict[str, str]) -> WorkspaceLimits:
    """Whole numbers from a form; :class:`Invalid` names every field that is not one."""
    errors: dict[str, str] = {}
    found: dict[str, int] = {}
    for name, label in LABELS.items():
        text = values.get(name, "").strip()
        if not text.isdigit() or len(text) > 6:
            errors[name] = f"{label}: enter a whole number."
        else:
            found[name] = int(text)
    if errors:
        raise Invalid(errors)
    return WorkspaceLimits(**found)


def check_limits(limits: WorkspaceLimits) -> None:
    """:class:`Invalid`, naming every field out of its range, unless the limits can be saved."""
    errors: dict[str, str] = {}
    for name, value in asdict(limits).items():
        ceiling = getattr(CEILINGS, name)
        if not 1 <= value <= ceiling:
            errors[name] = f"{LABELS[name]}: from 1 to {ceiling}."
    if not errors and limits.max_concurrent > limits.workspace_concurrency:
        errors["max_concurrent"] = "A swarm cannot run more tasks at once than the whole workspace may."
    if errors:
        raise Invalid(errors)


async def save_limits(session: AsyncSession, *, actor: Actor, limits: WorkspaceLimits) -> bool:
    """Set the workspace's limits (swarms already started keep theirs); False when nothing changed.

    Takes the scheduling lock, so no pass counts running tasks against a limit while it changes."""
    check_limits(limits)
    row = await scheduler.limits_row(session, lock=True)
    before = WorkspaceLimits(row.max_tasks, row.max_concurrent, row.workspace_concurrency)
    if before == limits:
        return False
    row.max_tasks, row.max_concurrent, row.workspace_concurrency = (
        limits.max_tasks,
        limits.max_concurrent,
        limits.workspace_concurrency,
    )
    await session.flush()
    await record_in_workspace(
        session,
        "swarm.limits_changed",
        actor,
        {"from": asdict(before), "to": asdict(limits), **asdict(limits)},
    )
    return True
