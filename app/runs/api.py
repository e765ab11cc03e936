"""``/workspaces/{slug}/runs``: JSON twins of the run pages (start, list, get, the controls) and the run's
events as a cursor list (long-polled with ``wait``), for the CLI's ``marid run --follow`` and other clients.

Every change calls the same runs service as the pages, then kicks the engine after the commit.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, Field

from app.api.errors import validation_error
from app.api.operations import Call, api_route
from app.api.principal import Scope
from app.api.schemas import Body
from app.live.bus import Topic, parse_stream_id
from app.live.permissions import required_permission
from app.queues import Enqueuer
from app.runs import dispatch, service
from app.runs.views import RUN_STATUSES, RunFilters, RunSummary, RunView, StepView
from app.tenants.permissions import permissions_of
from app.web.state import bus_of, db_of, workspace_changes

TAGS = ["Runs"]
MAX_WAIT = 25.0
POLL_SECONDS = 0.25
MAX_EVENTS = 500


class RunOut(BaseModel):
    id: str
    pipeline_id: str
    pipeline_name: str
    pipeline_version: int
    task: str
    status: str = Field(description="`queued`, `running`, `paused`, `completed`, `failed` or `cancelled`.")
    reason: str = Field(description="Why it ended or paused, in words for people.")
    created_by: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    current_step: str | None = None
    steps_done: int = 0
    cost: Decimal = Field(description="In US dollars, summed over the steps.")
    input_tokens: int
    output_tokens: int


class StepOut(BaseModel):
    id: str = Field(description="The visit's id (a step may be visited more than once: loops, reviews).")
    seq: int
    step_id: str
    agent_id: str
    via: str
    loop_item: int | None
    status: str
    attempt: int
    max_retries: int
    attempts: list[dict[str, Any]] = Field(description="Earlier attempts of this visit (retries).")
    human_context: str
    input: str
    outputs: dict[str, str]
    summary: str
    error: str
    model: str
    input_tokens: int
    output_tokens: int
    cost: Decimal
    commit: str | None
    queued_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class RunDetail(RunOut):
    outputs: dict[str, str]
    restarted_from: str | None
    steps: list[StepOut]


class RunList(BaseModel):
    data: list[RunOut]
    next_cursor: str | None = Field(description="Pass as `cursor` for older runs; null on the last page.")


class RunListQuery(BaseModel):
    status: str | None = Field(None, description="Only runs with this status.")
    pipeline: str | None = Field(None, max_length=64, description="Only runs of this pipeline id.")
    limit: int = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, max_length=40, description="`next_cursor` of the previous page.")


class RunStart(Body):
    pipeline: str = Field(max_length=64, description="The pipeline's id.")
    task: str = Field(max_length=service.MAX_TASK, description="What the run should do (`{{task_description}}`).")
    version: int | None = Field(None, ge=1, description="A saved version; omit for the current one.")


class StepRestart(Body):
    context: str = Field("", max_length=service.MAX_CONTEXT, description="Added to the step's input.")


class Injection(Body):
    text: str = Field(max_length=service.MAX_CONTEXT, description="Context delivered to the running step.")


class RunEvent(BaseModel):
    id: str = Field(description="The event's position in the run's stream: pass the last one as `since`.")
    type: str = Field(description="DjinnBot's event names: STEP_OUTPUT, TOOL_CALL_START, STEP_COMPLETE…")
    at: datetime
    payload: dict[str, Any]


class RunEvents(BaseModel):
    data: list[RunEvent]
    cursor: str = Field(description="Where to continue from (`since`).")
    status: str = Field(description="The run's status when the answer was made.")
    finished: bool


class EventsQuery(BaseModel):
    since: str = Field("0", max_length=40, description="A stream position; `0` for the start of the run.")
    wait: float = Field(0, ge=0, le=MAX_WAIT, description="Seconds to wait for an event when there is none yet.")


def run_out(run: RunSummary | RunView) -> RunOut:
    if isinstance(run, RunSummary):
        current, done = run.current_step, run.steps_done
    else:
        current = run.steps[-1].step_id if run.steps else None
        done = sum(step.status == "completed" for step in run.steps)
    return RunOut(
        id=run.id,
        pipeline_id=run.pipeline_id,
        pipeline_name=run.pipeline_name,
        pipeline_version=run.pipeline_version,
        task=run.task,
        status=run.status,
        reason=run.reason,
        created_by=run.created_by_label,
        created_at=run.created_at,
        started_at=run.started_at,
        finished_at=run.finished_at,
        current_step=current,
        steps_done=done,
        cost=run.cost,
        input_tokens=run.input_tokens,
        output_tokens=run.output_tokens,
    )


def step_out(step: StepView) -> StepOut:
    return StepOut(**{name: getattr(step, name) for name in StepOut.model_fields})


def run_detail(run: RunView) -> RunDetail:
    return RunDetail(
        **run_out(run).model_dump(),
        outputs=run.outputs,
        restarted_from=run.restarted_from,
        steps=[step_out(step) for step in run.steps],
    )


async def _kick(call: Call, run_id: str) -> None:
    jobs: Enqueuer = call.request.app.state.jobs
    await dispatch.kick(jobs, call.workspace.workspace.id, run_id)


async def _view(call: Call, run_id: str) -> RunView:
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        return await service.get_run(session, run_id)


@api_route(
    "POST", "/workspaces/{slug}/runs", scope=Scope.WRITE, permission="workspace.work", body=RunStart,
    response=RunDetail, status=201, summary="Start a run", tags=TAGS,
)  # fmt: skip
async def start_workspace_run(call: Call) -> RunDetail:
    """A new run of a pipeline's current version (or ``version``) on ``task``, queued for the workers."""
    body: RunStart = call.body
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        run = await service.start_run(
            session, pipeline_id=body.pipeline, task=body.task, actor=call.workspace.actor, version=body.version
        )
    await _kick(call, run.id)
    return run_detail(await _view(call, run.id))


@api_route(
    "GET", "/workspaces/{slug}/runs", scope=Scope.READ, permission="workspace.view", query=RunListQuery,
    response=RunList, summary="List runs", tags=TAGS,
)  # fmt: skip
async def list_workspace_runs(call: Call) -> RunList:
    """Newest first, filtered by status and pipeline; ``next_cursor`` pages back."""
    query: RunListQuery = call.query
    if query.status is not None and query.status not in RUN_STATUSES:
        raise validation_error([{"field": "status", "message": f"One of {', '.join(RUN_STATUSES)}."}])
    filters = RunFilters(status=query.status, pipeline_id=query.pipeline, limit=query.limit + 1, before=query.cursor)
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        runs = await service.list_runs(session, filters)
    more = len(runs) > query.limit
    runs = runs[: query.limit]
    return RunList(data=[run_out(run) for run in runs], next_cursor=runs[-1].id if more and runs else None)


@api_route(
    "GET", "/workspaces/{slug}/runs/{run}", scope=Scope.READ, permission="workspace.view",
    response=RunDetail, summary="Get a run", tags=TAGS,
)  # fmt: skip
async def get_workspace_run(call: Call) -> RunDetail:
    """The run with every step visit: attempts, timings, inputs, outputs, errors, tokens and cost."""
    return run_detail(await _view(call, call.params["run"]))


async def _control(call: Call, change: Any, *args: Any) -> RunDetail:
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        result = await change(session, call.params["run"], *args, call.workspace.actor)
    run_id = result.id if change is service.restart_run else call.params["run"]
    await _kick(call, run_id)
    return run_detail(await _view(call, run_id))


@api_route(
    "POST", "/workspaces/{slug}/runs/{run}/cancel", scope=Scope.WRITE, permission="workspace.work",
    response=RunDetail, summary="Cancel a run", tags=TAGS,
)  # fmt: skip
async def cancel_workspace_run(call: Call) -> RunDetail:
    """Stop the run; its running step is aborted."""
    return await _control(call, service.cancel_run)


@api_route(
    "POST", "/workspaces/{slug}/runs/{run}/pause", scope=Scope.WRITE, permission="workspace.work",
    response=RunDetail, summary="Pause a run", tags=TAGS,
)  # fmt: skip
async def pause_workspace_run(call: Call) -> RunDetail:
    """No new step starts until it is resumed; a running step finishes."""
    return await _control(call, service.pause_run)


@api_route(
    "POST", "/workspaces/{slug}/runs/{run}/resume", scope=Scope.WRITE, permission="workspace.work",
    response=RunDetail, summary="Resume a run", tags=TAGS,
)  # fmt: skip
async def resume_workspace_run(call: Call) -> RunDetail:
    """Carry a paused run on."""
    return await _control(call, service.resume_run)


@api_route(
    "POST", "/workspaces/{slug}/runs/{run}/restart", scope=Scope.WRITE, permission="workspace.work",
    response=RunDetail, status=201, summary="Run again", tags=TAGS,
)  # fmt: skip
async def restart_workspace_run(call: Call) -> RunDetail:
    """A new run of the same pinned version and task (the answer is the new run)."""
    return await _control(call, service.restart_run)


@api_route(
    "POST", "/workspaces/{slug}/runs/{run}/steps/{step}/restart", scope=Scope.WRITE, permission="workspace.work",
    body=StepRestart, response=RunDetail, summary="Restart a step", tags=TAGS,
)  # fmt: skip
async def restart_run_step(call: Call) -> RunDetail:
    """Run pipeline step ``step`` again with the added context, and carry the run on from there."""
    return await _control(call, service.restart_step, call.params["step"], call.body.context)


@api_route(
    "POST", "/workspaces/{slug}/runs/{run}/inject", scope=Scope.WRITE, permission="workspace.work",
    body=Injection, response=RunDetail, summary="Add context to the running step", tags=TAGS,
)  # fmt: skip
async def inject_run_context(call: Call) -> RunDetail:
    """Deliver context to the step that is running now (or queued: it gets it in its input)."""
    return await _control(call, service.inject_context, call.body.text)


@api_route(
    "GET", "/workspaces/{slug}/runs/{run}/events", scope=Scope.READ, permission="workspace.view",
    query=EventsQuery, response=RunEvents, summary="Read a run's events", tags=TAGS,
)  # fmt: skip
async def list_run_events(call: Call) -> RunEvents:
    """The run's events after ``since`` (oldest first, at most 500), waiting up to ``wait`` seconds for one."""
    query: EventsQuery = call.query
    try:
        since = parse_stream_id(query.since)
    except ValueError:
        raise validation_error([{"field": "since", "message": "Use the cursor of the previous answer."}]) from None
    run = await _view(call, call.params["run"])
    topic = Topic.run(run.id)
    bus = bus_of(call.request)
    workspace_id = call.workspace.workspace.id
    allowed = permissions_of(call.workspace.role)
    cursor = f"{since[0]}-{since[1]}"
    deadline = time.monotonic() + query.wait
    while True:
        found = await bus.read_since(workspace_id, [topic], {topic: cursor}, page_size=MAX_EVENTS)
        found = found[:MAX_EVENTS]
        if found or time.monotonic() >= deadline or run.finished:
            break
        await asyncio.sleep(POLL_SECONDS)
        run = await _view(call, run.id)
    events = [
        RunEvent(id=entry_id, type=event.type.value, at=event.at, payload=dict(event.payload))
        for _, entry_id, event in found
        if required_permission(event) in allowed
    ]
    if found:
        cursor = found[-1][1]
        run = await _view(call, run.id)
    return RunEvents(data=events, cursor=cursor, status=run.status, finished=run.finished)
