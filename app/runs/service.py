"""Runs, as the pages, the API and the CLI use them: start, list, read, and the human controls.

Services take a tenant session of the workspace and an actor; they flush, never commit, and audit every
change (``run.*``). They only change Postgres: the caller then awaits ``app.runs.dispatch.kick(jobs,
workspace_id, run_id)`` after the commit, and the engine acts (starts the run, stops a running sandbox,
delivers injected context, announces the new status on the run's stream).
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import and_, func, or_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from app.agents.models import Agent
from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid, NotFound, Refused
from app.pipelines import check_workspace_agents, load_pipeline
from app.pipelines.problems import Severity
from app.pipelines.service import get_version
from app.runs.models import Run, RunLoopItem, RunStep
from app.runs.state import TERMINAL, Effects, Machine, last_visit, new_id, pinned_pipeline
from app.runs.views import RUN_STATUSES, RunFilters, RunSummary, RunView, run_view

MAX_TASK = 20_000
MAX_CONTEXT = 10_000
MAX_PAGE = 200


class RunNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such run.")


def _now() -> datetime:
    return datetime.now(UTC)


async def _run(session: AsyncSession, run_id: str, *, for_update: bool = False) -> Run:
    if not run_id or len(run_id) > 32:
        raise RunNotFound()
    run = await session.get(Run, run_id, with_for_update=for_update)
    if run is None:
        raise RunNotFound()
    return run


def _details(run: Run, **extra: object) -> dict[str, object]:
    return {"run": run.id, "pipeline": run.pipeline_name, **extra}


async def start_run(
    session: AsyncSession, *, pipeline_id: str, task: str, actor: Actor, version: int | None = None
) -> Run:
    """A new run of the pipeline's current version (or ``version``), queued; refused, with every problem,
    when that version is not runnable here (its YAML, or agents the workspace no longer has)."""
    task = task.strip()
    if not task:
        raise Invalid({"task": "Say what the run should do."})
    if len(task) > MAX_TASK:
        raise Invalid({"task": f"A task is at most {MAX_TASK} characters."})
    pinned = await get_version(session, pipeline_id, version)
    result = load_pipeline(pinned.yaml)
    problems = list(result.problems)
    if result.pipeline is not None:
        known = set(await session.scalars(select(Agent.id)))
        problems += check_workspace_agents(result.pipeline, known)
    errors = [p for p in problems if p.severity is Severity.ERROR]
    if result.pipeline is None or errors:
        listed = "; ".join(str(p) for p in errors[:5]) + (f" (and {len(errors) - 5} more)" if len(errors) > 5 else "")
        raise Invalid({"pipeline": f"Version {pinned.number} of this pipeline cannot run: {listed}"})
    run = Run(
        id=new_id(),
        pipeline_id=pinned.pipeline_id,
        pipeline_version=pinned.number,
        pipeline_name=result.pipeline.name,
        pipeline_yaml=pinned.yaml,
        task=task,
        status="queued",
        reason="",
        outputs={},
        created_by_label=actor.label[:200],
        announced_status="",
    )
    session.add(run)
    await session.flush()
    await record_in_workspace(session, "run.started", actor, _details(run, version=run.pipeline_version))
    return run


async def list_runs(session: AsyncSession, filters: RunFilters) -> list[RunSummary]:
    """Newest first, a page at a time (``filters.before``: the last run id of the previous page)."""
    query = select(Run).order_by(Run.created_at.desc(), Run.id.desc())
    if filters.status:
        if filters.status not in RUN_STATUSES:
            raise Invalid({"status": "Not a run status."})
        query = query.where(Run.status == filters.status)
    if filters.pipeline_id:
        query = query.where(Run.pipeline_id == filters.pipeline_id)
    if filters.before:
        cursor = await session.get(Run, filters.before) if len(filters.before) <= 32 else None
        if cursor is None:
            raise Invalid({"before": "Not a run of this workspace."})
        query = query.where(
            or_(Run.created_at < cursor.created_at, and_(Run.created_at == cursor.created_at, Run.id < cursor.id))
        )
    runs = list(await session.scalars(query.limit(max(1, min(filters.limit, MAX_PAGE)))))
    if not runs:
        return []
    ids = [run.id for run in runs]
    totals = {
        row[0]: row[1:]
        for row in await session.execute(
            select(
                RunStep.run_id,
                func.coalesce(func.sum(RunStep.cost), 0),
                func.coalesce(func.sum(RunStep.input_tokens), 0),
                func.coalesce(func.sum(RunStep.output_tokens), 0),
                func.count().filter(RunStep.status == "completed"),
                func.max(RunStep.seq),
            )
            .where(RunStep.run_id.in_(ids))
            .group_by(RunStep.run_id)
        )
    }
    latest = [(run_id, row[4]) for run_id, row in totals.items() if row[4] is not None]
    newest: dict[str, str] = {}
    if latest:
        rows = await session.execute(
            select(RunStep.run_id, RunStep.step_id).where(tuple_(RunStep.run_id, RunStep.seq).in_(latest))
        )
        newest = {row[0]: row[1] for row in rows}
    summaries = []
    for run in runs:
        cost, tokens_in, tokens_out, done, _ = totals.get(run.id, (0, 0, 0, 0, 0))
        summaries.append(
            RunSummary(
                id=run.id,
                pipeline_id=run.pipeline_id,
                pipeline_name=run.pipeline_name,
                pipeline_version=run.pipeline_version,
                task=run.task,
                status=run.status,
                reason=run.reason,
                created_at=run.created_at,
                started_at=run.started_at,
                finished_at=run.finished_at,
                created_by_label=run.created_by_label,
                current_step=newest.get(run.id),
                steps_done=int(done),
                cost=Decimal(cost),
                input_tokens=int(tokens_in),
                output_tokens=int(tokens_out),
            )
        )
    return summaries


async def get_run(session: AsyncSession, run_id: str) -> RunView:
    """The run and every step visit (attempts, timings, outputs, errors, tokens, cost), loop items included."""
    run = await _run(session, run_id)
    visits = list(await session.scalars(select(RunStep).where(RunStep.run_id == run.id).order_by(RunStep.seq)))
    items = list(
        await session.scalars(
            select(RunLoopItem).where(RunLoopItem.run_id == run.id).order_by(RunLoopItem.loop_step, RunLoopItem.index)
        )
    )
    return run_view(run, visits, items)


async def cancel_run(session: AsyncSession, run_id: str, actor: Actor) -> Run:
    """Stop the run: its running step is aborted (its sandbox stopped, its token revoked) by the engine."""
    run = await _run(session, run_id, for_update=True)
    if run.status in TERMINAL:
        raise Refused(f"This run has already {run.status}.")
    run.status, run.reason, run.finished_at, run.updated_at = (
        "cancelled",
        f"Cancelled by {actor.label}.",
        _now(),
        _now(),
    )
    await session.flush()
    await record_in_workspace(session, "run.cancelled", actor, _details(run))
    return run


async def pause_run(session: AsyncSession, run_id: str, actor: Actor) -> Run:
    """No new step starts; a step already running finishes and its result waits for ``resume_run``."""
    run = await _run(session, run_id, for_update=True)
    if run.status not in ("queued", "running"):
        raise Refused(f"Only a queued or running run can be paused (this one is {run.status}).")
    run.status, run.reason, run.updated_at = "paused", f"Paused by {actor.label}.", _now()
    await session.flush()
    await record_in_workspace(session, "run.paused", actor, _details(run))
    return run


async def resume_run(session: AsyncSession, run_id: str, actor: Actor) -> Run:
    run = await _run(session, run_id, for_update=True)
    if run.status != "paused":
        raise Refused(f"Only a paused run can be resumed (this one is {run.status}).")
    run.status = "running" if run.started_at is not None else "queued"
    run.reason, run.updated_at = "", _now()
    await session.flush()
    await record_in_workspace(session, "run.resumed", actor, _details(run))
    return run


async def restart_run(session: AsyncSession, run_id: str, actor: Actor) -> Run:
    """A new run of the same pinned version and task (the old one is left as it is)."""
    old = await _run(session, run_id)
    try:
        pinned_pipeline(old.pipeline_yaml)
    except ValueError as error:
        raise Invalid({"pipeline": f"The pinned pipeline cannot run: {error}"}) from None
    run = Run(
        id=new_id(),
        pipeline_id=old.pipeline_id,
        pipeline_version=old.pipeline_version,
        pipeline_name=old.pipeline_name,
        pipeline_yaml=old.pipeline_yaml,
        task=old.task,
        status="queued",
        reason="",
        outputs={},
        created_by_label=actor.label[:200],
        restarted_from=old.id,
        model_override=old.model_override,
        announced_status="",
    )
    session.add(run)
    await session.flush()
    await record_in_workspace(session, "run.restarted", actor, _details(run, **{"from": old.id}))
    return run


async def restart_step(session: AsyncSession, run_id: str, step_id: str, added_context: str, actor: Actor) -> Run:
    """Run ``step_id`` again (a new visit) with ``added_context``, and carry the run on from there.

    A step of the run that is queued or running is cancelled first (its worker notices at its next heartbeat).
    A finished run is reopened.
    """
    run = await _run(session, run_id, for_update=True)
    pipeline = pinned_pipeline(run.pipeline_yaml)
    if pipeline.step(step_id) is None:
        raise Invalid({"step": f"The pipeline has no step {step_id}."})
    added_context = added_context.strip()
    if len(added_context) > MAX_CONTEXT:
        raise Invalid({"context": f"Added context is at most {MAX_CONTEXT} characters."})
    for visit in await session.scalars(
        select(RunStep).where(RunStep.run_id == run.id, RunStep.status.in_(("queued", "running"))).with_for_update()
    ):
        visit.status, visit.error, visit.finished_at = "cancelled", f"Replaced: step {step_id} restarted.", _now()
        visit.lease_owner = visit.lease_expires_at = None
    if run.status != "paused":
        run.status = "running"
    run.reason, run.finished_at, run.updated_at = "", None, _now()
    if run.started_at is None:
        run.started_at = _now()
    context = f"[HUMAN RESTART] {added_context}" if added_context else "[HUMAN RESTART]"
    machine = Machine(session, run, pipeline, Effects(run.id))
    await machine.goto(step_id, "restart", human_context=context)
    await session.flush()
    await record_in_workspace(session, "run.step_restarted", actor, _details(run, step=step_id))
    return run


async def inject_context(session: AsyncSession, run_id: str, text: str, actor: Actor) -> RunStep:
    """Add context to the step that is running (delivered to the agent at once) or queued (in its input)."""
    text = text.strip()
    if not text:
        raise Invalid({"text": "Write the context to add."})
    if len(text) > MAX_CONTEXT:
        raise Invalid({"text": f"Added context is at most {MAX_CONTEXT} characters."})
    run = await _run(session, run_id, for_update=True)
    visit = await last_visit(session, run.id, for_update=True)
    if run.status in TERMINAL or visit is None or visit.status not in ("queued", "running"):
        raise Refused("No step of this run is queued or running to take the context.")
    visit.injections = [*visit.injections, text]
    addition = f"[ADDITIONAL CONTEXT] {text}"
    visit.human_context = f"{visit.human_context}\n\n{addition}".strip()
    await session.flush()
    await record_in_workspace(session, "run.context_injected", actor, _details(run, step=visit.step_id))
    return visit
