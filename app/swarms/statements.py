"""The scheduler's hot statements, built once with bound parameters.

A pass runs once per finished task. Building a SQLAlchemy statement (coercing every column and operator) and
deriving its cache key cost about as much CPU as the round trips themselves; a statement object built once is
compiled once and its cache key is remembered, so each pass only binds values. (Parameter names start with
``p_``: SQLAlchemy keeps the column names for the SET clause.) Executed on the session's Core
connection: nothing here needs the ORM's identity map.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    DateTime,
    Integer,
    Numeric,
    Select,
    Update,
    bindparam,
    case,
    exists,
    func,
    select,
    true,
    update,
)

from app.swarms.models import Swarm, SwarmSettings, SwarmTask

_SWARM: BindParameter[str] = bindparam("p_swarm_id")
_NOW = bindparam("p_now", type_=DateTime(timezone=True))
# What an attempt's job needs of its task and swarm (app.swarms.scheduler.Claimed, in its order).
_CLAIMED = (
    SwarmTask.title,
    SwarmTask.execution_prompt,
    SwarmTask.model,
    SwarmTask.timeout_seconds,
    Swarm.agent_id,
    Swarm.deviation_rules,
)


def lock_workspace() -> Select[Any]:
    """The workspace's scheduling lock (its swarm settings row, FOR UPDATE); reads its concurrency."""
    return select(SwarmSettings.workspace_concurrency).where(SwarmSettings.id == 1).with_for_update()


def dispatch() -> Update:
    """Mark the ready tasks with the longest chain ahead running, as many as the swarm's and the workspace's free
    slots allow; none when the swarm is not running, was cancelled or is out of time.

    Parameters: ``p_swarm_id``, ``p_now``, ``p_workspace_concurrency``, ``p_started_at``, ``p_lease_expires_at``.
    """
    here = SwarmTask.swarm_id == _SWARM
    running_here = select(func.count()).select_from(SwarmTask).where(here, SwarmTask.status == "running")
    running_all = select(func.count()).select_from(SwarmTask).where(SwarmTask.status == "running")
    slots = (
        select(
            func.greatest(
                0,
                func.least(
                    Swarm.max_concurrent - running_here.scalar_subquery(),
                    bindparam("p_workspace_concurrency", type_=Integer) - running_all.scalar_subquery(),
                ),
            )
        )
        .where(
            Swarm.id == _SWARM, Swarm.status == "running", Swarm.cancel_requested.is_(False), Swarm.deadline_at > _NOW
        )
        .scalar_subquery()
    )
    # LIMIT NULL would mean no limit: a swarm that may not start anything gives 0.
    picked = (
        select(SwarmTask.key)
        .where(here, SwarmTask.status == "ready")
        .order_by(SwarmTask.height.desc(), SwarmTask.position)
        .limit(func.coalesce(slots, 0))
        .scalar_subquery()
    )
    return (
        update(SwarmTask)
        .where(here, SwarmTask.key.in_(picked), SwarmTask.status == "ready", Swarm.id == SwarmTask.swarm_id)
        .values(
            status="running",
            attempts=SwarmTask.attempts + 1,
            started_at=bindparam("p_started_at", type_=DateTime(timezone=True)),
            finished_at=None,
            lease_owner=None,
            lease_expires_at=bindparam("p_lease_expires_at", type_=DateTime(timezone=True)),
        )
        .returning(SwarmTask.key, SwarmTask.attempts, *_CLAIMED)
    )


def finish(ok: bool) -> Select[Any]:
    """Record an attempt's outcome if the task is still running under it: for a success, count it off its
    dependents' waits (the last one makes a dependent ready); for a failure, a retry or the end.

    Parameters: ``p_swarm_id``, ``p_key``, ``p_attempt``, ``p_now``, ``p_output``, ``p_outputs``, ``p_cost_usd``,
    ``p_input_tokens``, ``p_output_tokens``, ``p_sandbox_id``, ``p_error``.

    It takes the workspace's scheduling lock first (a caller that already holds it takes it again at no cost): the
    outcome is recorded under it, and the task's row and then its dependents' rows are locked after it, in the
    order every pass and stop uses. The rows it updates are re-checked on their newest version (PostgreSQL's rule
    for an UPDATE in READ COMMITTED), so a change committed while it waited for the lock is not overwritten.

    Returns no row when the workspace has no settings row yet; otherwise one row: the workspace's concurrency, then
    the recorded task's status, title, started_at, dependents, failures, max_retries (all NULL when the attempt no
    longer counts).
    """
    lock = lock_workspace().cte("scheduling_lock")
    # The lock's subquery is evaluated once, before any row is looked at (it is uncorrelated): the lock comes first.
    running = _this_attempt_running() & exists(select(lock.c.workspace_concurrency))
    retry = SwarmTask.failures + 1 <= SwarmTask.max_retries
    changes: dict[str, Any]
    if ok:
        changes = {"status": "completed", "finished_at": _NOW, "error": None}
    else:
        changes = {
            "status": case((retry, "ready"), else_="failed"),
            "failures": SwarmTask.failures + 1,
            "error": bindparam("p_error"),
            "finished_at": case((retry, None), else_=_NOW),
            "ready_at": case((retry, _NOW), else_=SwarmTask.ready_at),
        }
    recorded = (
        update(SwarmTask)
        .where(running)
        .values(
            output=bindparam("p_output"),
            outputs=bindparam("p_outputs", type_=SwarmTask.__table__.c.outputs.type),
            cost_usd=SwarmTask.cost_usd + bindparam("p_cost_usd", type_=Numeric(14, 6)),
            input_tokens=SwarmTask.input_tokens + bindparam("p_input_tokens", type_=Integer),
            output_tokens=SwarmTask.output_tokens + bindparam("p_output_tokens", type_=Integer),
            sandbox_id=bindparam("p_sandbox_id"),
            lease_expires_at=None,
            lease_owner=None,
            **changes,
        )
        .returning(
            SwarmTask.status,
            SwarmTask.title,
            SwarmTask.started_at,
            SwarmTask.dependents,
            SwarmTask.failures,
            SwarmTask.max_retries,
        )  # fmt: skip
        .cte("recorded")
    )
    statement = select(lock.c.workspace_concurrency, *recorded.c).select_from(lock.outerjoin(recorded, true()))
    if ok:
        # The dependents this completion may release (other rows than the recorded one: one statement may update
        # both). A dependent that is no longer pending (skipped, cancelled) keeps its state.
        released = select(func.unnest(recorded.c.dependents)).where(recorded.c.status == "completed")
        last = SwarmTask.waiting_on <= 1
        release = (
            update(SwarmTask)
            .where(SwarmTask.swarm_id == _SWARM, SwarmTask.key.in_(released), SwarmTask.status == "pending")
            .values(
                waiting_on=SwarmTask.waiting_on - 1,
                status=case((last, "ready"), else_=SwarmTask.status),
                ready_at=case((last, _NOW), else_=SwarmTask.ready_at),
            )
            .returning(SwarmTask.key)
            .cte("released")
        )
        statement = statement.add_cte(release)
    return statement


def _this_attempt_running() -> ColumnElement[bool]:
    """The task ``p_swarm_id``/``p_key`` is running under attempt ``p_attempt`` (a stale job matches nothing)."""
    return (
        (SwarmTask.swarm_id == _SWARM)
        & (SwarmTask.key == bindparam("p_key"))
        & (SwarmTask.status == "running")
        & (SwarmTask.attempts == bindparam("p_attempt", type_=Integer))
    )


def begin() -> Update:
    """Take an attempt's lease. Parameters: ``p_swarm_id``, ``p_key``, ``p_attempt``, ``p_worker``, ``p_now``,
    ``p_lease_expires_at``; returns what the attempt needs of its task and swarm (no row: a stale job)."""
    return (
        update(SwarmTask)
        .where(_this_attempt_running(), Swarm.id == SwarmTask.swarm_id)
        .values(lease_owner=bindparam("p_worker"), lease_expires_at=bindparam("p_lease_expires_at"), started_at=_NOW)
        .returning(*_CLAIMED)
    )


def renew() -> Update:
    """Extend an attempt's lease. Parameters: ``p_swarm_id``, ``p_key``, ``p_attempt``, ``p_lease_expires_at``;
    no row returned when the task was cancelled or taken back."""
    return (
        update(SwarmTask)
        .where(_this_attempt_running())
        .values(lease_expires_at=bindparam("p_lease_expires_at"))
        .returning(SwarmTask.key)
    )


LOCK_WORKSPACE = lock_workspace()
BEGIN = begin()
RENEW = renew()
DISPATCH = dispatch()
FINISH_OK = finish(ok=True)
FINISH_FAILED = finish(ok=False)
