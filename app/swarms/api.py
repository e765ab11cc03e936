"""``/workspaces/{slug}/swarms``: start (or preview) a swarm, list, read, cancel, and read its events from a
cursor (what ``marid swarm start --follow`` polls), calling the same services as the pages."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from pydantic import BaseModel, Field

from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, newest_first, paginate
from app.api.principal import Scope
from app.errors import Invalid
from app.live.bus import Topic, parse_stream_id
from app.swarms import limits, service
from app.swarms.models import Swarm, SwarmTask
from app.swarms.schemas import (
    EventOut,
    SwarmDetail,
    SwarmEvents,
    SwarmLimitsIn,
    SwarmLimitsOut,
    SwarmList,
    SwarmOut,
    SwarmPreview,
    SwarmStart,
    TaskDetail,
    TaskOut,
)
from app.swarms.spec import preview
from app.web.state import bus_of, db_of, workspace_changes

TAGS = ["Swarms"]


class SwarmQuery(PageQuery):
    status: str | None = Field(None, description="running, completed, failed or cancelled.")


class EventsQuery(BaseModel):
    after: str = Field("0-0", max_length=48, description="The last event id seen (`0-0`: from the start).")


def swarm_out(row: service.SwarmRow) -> dict[str, Any]:
    swarm = row.swarm
    return {
        "id": swarm.id,
        "title": swarm.title,
        "agent_id": swarm.agent_id,
        "status": swarm.status,
        "origin": swarm.origin,
        "created_by": swarm.created_by_label,
        "max_concurrent": swarm.max_concurrent,
        "global_timeout_seconds": swarm.global_timeout_seconds,
        "created_at": swarm.created_at,
        "deadline_at": swarm.deadline_at,
        "finished_at": swarm.finished_at,
        "error": swarm.error,
        "counts": row.counts,
        "cost_usd": str(row.cost_usd),
    }


def task_out(task: SwarmTask) -> dict[str, Any]:
    return {
        "key": task.key,
        "title": task.title,
        "status": task.status,
        "dependencies": list(task.dependencies),
        "level": task.level,
        "model": task.model,
        "timeout_seconds": task.timeout_seconds,
        "max_retries": task.max_retries,
        "attempts": task.attempts,
        "started_at": task.started_at,
        "finished_at": task.finished_at,
        "error": task.error,
        "outputs": task.outputs,
        "cost_usd": str(task.cost_usd),
    }


def detail(swarm: Swarm, tasks: list[SwarmTask]) -> SwarmDetail:
    row = service.row_of(swarm, tasks)
    return SwarmDetail(
        **swarm_out(row),
        deviation_rules=swarm.deviation_rules,
        summary=swarm.summary,
        tasks=[TaskOut(**task_out(t)) for t in tasks],
    )


@api_route(
    "POST", "/workspaces/{slug}/swarms", scope=Scope.WRITE, permission="workspace.work", body=SwarmStart,
    response=SwarmDetail, status=201, summary="Start a swarm", tags=TAGS,
)  # fmt: skip
async def start_swarm(call: Call) -> SwarmDetail:
    """Validate the DAG (every problem at once, each with its field) and start it; the tasks run in the workers."""
    workspace_id = call.workspace.workspace.id
    bus = bus_of(call.request)
    async with workspace_changes(call.request, workspace_id) as session:
        swarm = await service.start_swarm(
            session, bus, workspace_id, call.workspace.actor, call.body.request(), origin=_origin(call)
        )
        tasks = await service.tasks_of(session, swarm.id)
    await service.kick_off(call.request.app.state.jobs, bus, workspace_id, swarm)
    return detail(swarm, tasks)


def _origin(call: Call) -> str:
    # The CLI says who it is; anything else over the API is "api".
    agent = call.request.headers.get("user-agent", "")
    return "cli" if agent.startswith("marid-cli") else "api"


@api_route(
    "POST", "/workspaces/{slug}/swarms/preview", scope=Scope.READ, permission="workspace.view", body=SwarmStart,
    response=SwarmPreview, summary="Preview a swarm", tags=TAGS,
)  # fmt: skip
async def preview_swarm(call: Call) -> SwarmPreview:
    """What a start would say, without starting: the problems, or the DAG's depth, roots and warnings."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        return await preview_of(session, call.body.request())


async def preview_of(session: Any, data: Any) -> SwarmPreview:
    try:
        spec = await service.check_request(session, data)
    except service.SwarmInvalid as invalid:
        problems = [{"field": p.path, "code": p.code, "message": p.message} for p in invalid.problems]
        return SwarmPreview(valid=False, problems=problems)
    shown = preview(spec)
    return SwarmPreview(
        valid=True, problems=[], total_tasks=shown.total_tasks, dag_depth=shown.depth,
        root_tasks=list(shown.roots), warnings=list(shown.warnings),
    )  # fmt: skip


@api_route(
    "GET", "/workspaces/{slug}/swarms", scope=Scope.READ, permission="workspace.view", query=SwarmQuery,
    response=SwarmList, summary="List swarms", tags=TAGS,
)  # fmt: skip
async def list_swarms(call: Call) -> BaseModel:
    """The workspace's swarms, newest first, with task counts by status and their cost."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        rows = await service.list_swarms(session, status=call.query.status, limit=500)
    page = paginate(rows, lambda r: (newest_first(r.swarm.created_at), r.swarm.id), (int, str), call.query)
    return envelope(SwarmList, page, lambda r: SwarmOut(**swarm_out(r)))


def _limits_out(current: limits.WorkspaceLimits) -> SwarmLimitsOut:
    return SwarmLimitsOut(**asdict(current), ceilings=asdict(limits.CEILINGS))


# Registered before /swarms/{swarm}: "limits" is no swarm's id.
@api_route(
    "GET", "/workspaces/{slug}/swarms/limits", scope=Scope.READ, permission="workspace.view",
    response=SwarmLimitsOut, summary="The workspace's swarm limits", tags=TAGS,
)  # fmt: skip
async def get_swarm_limits(call: Call) -> SwarmLimitsOut:
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        return _limits_out(await limits.read_limits(session))


@api_route(
    "PUT", "/workspaces/{slug}/swarms/limits", scope=Scope.ADMIN, permission="settings.edit", body=SwarmLimitsIn,
    response=SwarmLimitsOut, summary="Set the workspace's swarm limits", tags=TAGS,
)  # fmt: skip
async def set_swarm_limits(call: Call) -> SwarmLimitsOut:
    """Each limit from 1 to the platform's ceiling; swarms already running keep the limits they started with."""
    body: SwarmLimitsIn = call.body
    wanted = limits.WorkspaceLimits(body.max_tasks, body.max_concurrent, body.workspace_concurrency)
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        await limits.save_limits(session, actor=call.workspace.actor, limits=wanted)
    return _limits_out(wanted)


@api_route(
    "GET", "/workspaces/{slug}/swarms/{swarm}", scope=Scope.READ, permission="workspace.view",
    response=SwarmDetail, summary="Get a swarm", tags=TAGS,
)  # fmt: skip
async def get_swarm(call: Call) -> SwarmDetail:
    """A swarm and every task: status, attempts, timings, outputs, errors, cost."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        swarm = await service.get_swarm(session, call.params["swarm"])
        tasks = await service.tasks_of(session, swarm.id)
    return detail(swarm, tasks)


@api_route(
    "GET", "/workspaces/{slug}/swarms/{swarm}/tasks/{task}", scope=Scope.READ, permission="workspace.view",
    response=TaskDetail, summary="Get a swarm task", tags=TAGS,
)  # fmt: skip
async def get_swarm_task(call: Call) -> TaskDetail:
    """One task with its prompt and its output text."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        task = await service.get_task(session, call.params["swarm"], call.params["task"])
    return TaskDetail(**task_out(task), execution_prompt=task.execution_prompt, output=task.output)


@api_route(
    "POST", "/workspaces/{slug}/swarms/{swarm}/cancel", scope=Scope.WRITE, permission="workspace.work",
    response=SwarmDetail, summary="Cancel a swarm", tags=TAGS,
)  # fmt: skip
async def cancel_swarm(call: Call) -> SwarmDetail:
    """Cancel every unfinished task; running tasks stop and their sandboxes are destroyed within seconds."""
    workspace_id = call.workspace.workspace.id
    async with workspace_changes(call.request, workspace_id) as session:
        notes = await service.cancel_swarm(session, workspace_id, call.workspace.actor, call.params["swarm"])
        swarm = await service.get_swarm(session, call.params["swarm"])
        tasks = await service.tasks_of(session, swarm.id)
    await service.nudge(bus_of(call.request), workspace_id, swarm.id, notes)
    return detail(swarm, tasks)


@api_route(
    "GET", "/workspaces/{slug}/swarms/{swarm}/events", scope=Scope.READ, permission="workspace.view",
    query=EventsQuery, response=SwarmEvents, summary="Read a swarm's events", tags=TAGS,
)  # fmt: skip
async def swarm_events(call: Call) -> SwarmEvents:
    """The swarm's live events after `after` (swarm:* progress and the tasks' output), oldest first."""
    workspace_id = call.workspace.workspace.id
    try:
        parse_stream_id(call.query.after)
    except ValueError:
        raise Invalid({"after": "Not an event id: use the `id` of the last event, or 0-0."}) from None
    async with db_of(call.request).tenant_session(workspace_id) as session:
        swarm = await service.get_swarm(session, call.params["swarm"])
    topic = Topic.swarm(swarm.id)
    entries = await bus_of(call.request).read_since(workspace_id, [topic], {topic: call.query.after}, page_size=500)
    entries = entries[:1000]
    events = [EventOut(id=i, type=e.type.value, at=e.at, payload=e.payload) for _, i, e in entries]
    return SwarmEvents(events=events, after=events[-1].id if events else call.query.after, status=swarm.status)
