"""The swarms pages: the list, the composer (paste YAML or JSON, or fill the form; a live preview of the DAG as
it is typed), a swarm's page (status bar, the DAG and the timeline in SVG, live over SSE; cancel), and a task's
page (its prompt, outputs and output text, streamed while it runs)."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

import yaml
from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import BaseRoute, Route

from app.agents.service import list_agents
from app.errors import Invalid, NotFound, ServiceError
from app.live.bus import Topic
from app.live.sse import encode_cursor
from app.swarms import limits, service
from app.swarms.models import Swarm, SwarmTask
from app.swarms.spec import DEFAULT_GLOBAL_TIMEOUT, DEFAULT_MAX_CONCURRENT, SwarmSpec, levels_of, load_text, preview
from app.swarms.svg import Node, dag_svg, gantt_svg
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.idempotency import submit_once
from app.web.pages import redirect_with_flash
from app.web.state import bus_of, db_of, workspace_changes
from app.web.templating import render, render_block

COMPOSER = "swarms/new.html"
FORM_MAX_CHARS = 600_000
STATUSES = ("pending", "ready", "running", "completed", "failed", "skipped", "cancelled")
EXAMPLE = """\
title: Notes for the release
agent_id: {agent}
max_concurrent: 2
global_timeout_seconds: 1800
deviation_rules: Stay inside your own folder; say what you changed.
tasks:
  - key: changelog
    title: Draft the changelog
    execution_prompt: Write CHANGELOG.md from the commit list in commits.txt.
  - key: upgrade
    title: Write the upgrade notes
    execution_prompt: Write UPGRADING.md for operators.
  - key: announce
    title: Write the announcement
    execution_prompt: Write ANNOUNCEMENT.md from the changelog and the upgrade notes.
    dependencies: [changelog, upgrade]
"""


def _base(context: WorkspaceContext) -> str:
    return f"/w/{context.workspace.slug}/swarms"


def nodes_of(tasks: list[SwarmTask]) -> list[Node]:
    return [Node(t.key, t.title, t.status, t.level, tuple(t.dependencies), t.started_at, t.finished_at) for t in tasks]


def spec_nodes(spec: SwarmSpec) -> list[Node]:
    level = levels_of(spec.tasks)
    return [Node(t.key, t.title, "pending", level[t.key], t.dependencies) for t in spec.tasks]


# --- list ----------------------------------------------------------------------------------------------------


@workspace_required("workspace.view")
async def swarms_page(request: Request, context: WorkspaceContext) -> Response:
    status = request.query_params.get("status") or None
    if status not in (None, "running", "completed", "failed", "cancelled"):
        status = None
    async with db_of(request).tenant_session(context.workspace.id) as session:
        rows = await service.list_swarms(session, status=status, limit=100)
    return render(request, "swarms/index.html", {"rows": rows, "status": status or "", "statuses": STATUSES})


# --- composer ------------------------------------------------------------------------------------------------


def request_text(values: dict[str, str]) -> str:
    """The request as typed: the pasted text, or one built from the form's fields (mode "form")."""
    if values.get("mode") != "form":
        return values.get("request", "")
    tasks: list[dict[str, Any]] = []
    for index in range(200):
        key = values.get(f"task-{index}-key", "").strip()
        prompt = values.get(f"task-{index}-prompt", "")
        if not key and not prompt.strip():
            continue
        deps = [d.strip() for d in values.get(f"task-{index}-deps", "").replace(",", " ").split() if d.strip()]
        tasks.append(
            {"key": key, "title": values.get(f"task-{index}-title", "").strip() or key,
             "execution_prompt": prompt, "dependencies": deps}
        )  # fmt: skip
    data: dict[str, Any] = {
        "agent_id": values.get("agent_id", ""),
        "title": values.get("title", ""),
        "deviation_rules": values.get("deviation_rules", ""),
        "tasks": tasks,
    }
    for name in ("max_concurrent", "global_timeout_seconds"):
        if values.get(name, "").strip():
            data[name] = values[name].strip()
    return json.dumps(data)


def _filled_row(name: str, values: dict[str, str]) -> bool:
    parts = name.split("-")
    return len(parts) == 3 and parts[0] == "task" and parts[1].isdigit() and bool(values[name].strip())


async def _preview_page(request: Request, context: WorkspaceContext, values: dict[str, str]) -> dict[str, Any]:
    text = request_text(values)
    problems: list[str] = []
    shown = None
    drawing = Markup("")
    async with db_of(request).tenant_session(context.workspace.id) as session:
        try:
            spec = await service.check_text(session, text)
        except service.SwarmInvalid as invalid:
            problems = [str(p) for p in invalid.problems]
        else:
            shown = preview(spec)
            drawing = Markup(dag_svg(spec_nodes(spec)))  # built escaped by app.swarms.svg
    return {"problems": problems, "shown": shown, "drawing": drawing, "typed": bool(text.strip())}


async def _composer(
    request: Request, context: WorkspaceContext, values: dict[str, str], *, errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:  # fmt: skip
    async with db_of(request).tenant_session(context.workspace.id) as session:
        agents = await list_agents(session)
    page = {
        "values": values,
        "agents": agents,
        "errors": errors or {},
        # Rows in use and three more (a refused start comes back with room to add).
        "rows": range(max(5, 4 + max((int(k.split("-")[1]) for k in values if _filled_row(k, values)), default=-1))),
        "defaults": {"max_concurrent": DEFAULT_MAX_CONCURRENT, "global_timeout_seconds": DEFAULT_GLOBAL_TIMEOUT},
        **await _preview_page(request, context, values),
    }
    return render(request, COMPOSER, page, status_code=status_code)


@workspace_required("workspace.work")
async def new_page(request: Request, context: WorkspaceContext) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        agents = await list_agents(session)
    agent = agents[0].id if agents else "your-agent"
    values = {"mode": request.query_params.get("mode", "paste"), "request": EXAMPLE.format(agent=agent)}
    if agents:
        values["agent_id"] = agent
    return await _composer(request, context, values)


@workspace_required("workspace.work")
async def preview_fragment(request: Request, context: WorkspaceContext) -> Response:
    """The preview of the request as typed (htmx swaps it in); starts nothing."""
    values = await read_form(request, max_chars=FORM_MAX_CHARS)
    page = await _preview_page(request, context, values)
    return HTMLResponse(render_block(request, COMPOSER, "preview", page), headers={"Cache-Control": "no-store"})


@workspace_required("workspace.work")
async def create(request: Request, context: WorkspaceContext) -> Response:
    values = await read_form(request, max_chars=FORM_MAX_CHARS)

    async def act() -> Response:
        data, problems = load_text(request_text(values))
        try:
            if problems:
                raise service.SwarmInvalid(problems)
            bus = bus_of(request)
            async with workspace_changes(request, context.workspace.id) as session:
                swarm = await service.start_swarm(session, bus, context.workspace.id, context.actor, data, origin="ui")
        except ServiceError as refused:
            errors = {"_form": "The swarm was not started: fix what the preview lists."}
            return await _composer(request, context, values, errors=errors, status_code=page_status(refused))
        await service.kick_off(request.app.state.jobs, bus, context.workspace.id, swarm)
        return redirect_with_flash(request, f"{_base(context)}/{swarm.id}", f"Started the swarm “{swarm.title}”.")

    return await submit_once(request, values, scope=f"swarms:{context.workspace.id}", act=act)


# --- a swarm -------------------------------------------------------------------------------------------------


async def _swarm(request: Request, context: WorkspaceContext) -> tuple[Swarm, list[SwarmTask]]:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            swarm = await service.get_swarm(session, request.path_params["swarm"])
            tasks = await service.tasks_of(session, swarm.id)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    return swarm, tasks


def swarm_view(context: WorkspaceContext, swarm: Swarm, tasks: list[SwarmTask]) -> dict[str, Any]:
    now = datetime.now(UTC)
    row = service.row_of(swarm, tasks)
    nodes = nodes_of(tasks)
    end = swarm.finished_at or now
    return {
        "swarm": swarm,
        "tasks": tasks,
        "counts": [(s, row.counts.get(s, 0)) for s in STATUSES],
        "cost": row.cost_usd,
        "elapsed": (end - swarm.created_at).total_seconds(),
        # Built escaped by app.swarms.svg (every text and attribute), so marked safe here.
        "dag": Markup(dag_svg(nodes, link=f"{_base(context)}/{swarm.id}/tasks/")),
        "gantt": Markup(gantt_svg(nodes, start=swarm.created_at, now=end)),
        "base": f"{_base(context)}/{swarm.id}",
    }


async def _stream(request: Request, context: WorkspaceContext, swarm_id: str) -> str:
    """The swarm's live stream from now (what the page shows was read from Postgres just before)."""
    topic = Topic.swarm(swarm_id)
    positions = await bus_of(request).positions(context.workspace.id, [topic])
    since = encode_cursor([topic], positions)
    return f"/w/{context.workspace.slug}/events?topics={topic.name}&since={since}"


@workspace_required("workspace.view")
async def swarm_page(request: Request, context: WorkspaceContext) -> Response:
    swarm, tasks = await _swarm(request, context)  # first: an id that is no swarm's is a 404, not a topic
    stream = await _stream(request, context, swarm.id)
    page = {**swarm_view(context, swarm, tasks), "stream_url": stream}
    if request.headers.get("HX-Request") == "true":  # the live part again, after the swarm ended
        return HTMLResponse(render_block(request, "swarms/detail.html", "live", page))
    return render(request, "swarms/detail.html", page)


@workspace_required("workspace.work")
async def cancel(request: Request, context: WorkspaceContext) -> Response:
    await read_form(request)
    swarm_id = request.path_params["swarm"]
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            notes = await service.cancel_swarm(session, context.workspace.id, context.actor, swarm_id)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    except ServiceError as refused:
        return redirect_with_flash(request, f"{_base(context)}/{swarm_id}", refused.message, "info")
    await service.nudge(bus_of(request), context.workspace.id, swarm_id, notes)
    return redirect_with_flash(request, f"{_base(context)}/{swarm_id}", "Cancelled the swarm; its running tasks stop.")


@workspace_required("workspace.view")
async def task_page(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            swarm = await service.get_swarm(session, request.path_params["swarm"])
            task = await service.get_task(session, swarm.id, request.path_params["task"])
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    # After the lookup: an id that is no swarm's is a 404, never a topic name.
    stream = await _stream(request, context, swarm.id)
    outputs = yaml.safe_dump(task.outputs, allow_unicode=True, sort_keys=False) if task.outputs else ""
    page = {"swarm": swarm, "task": task, "outputs": outputs, "stream_url": stream,
            "base": f"{_base(context)}/{swarm.id}"}  # fmt: skip
    return render(request, "swarms/task.html", page)


# --- the workspace's limits ----------------------------------------------------------------------------------


async def _limits_page(
    request: Request, context: WorkspaceContext, values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None, status_code: int = 200,
) -> Response:  # fmt: skip
    async with db_of(request).tenant_session(context.workspace.id) as session:
        current = await limits.read_limits(session)
    shown = values or {name: str(value) for name, value in asdict(current).items()}
    page = {"current": current, "values": shown, "errors": errors or {}, "ceilings": limits.CEILINGS,
            "labels": limits.LABELS}  # fmt: skip
    return render(request, "swarms/limits.html", page, status_code=status_code)


@workspace_required("workspace.view")
async def limits_page(request: Request, context: WorkspaceContext) -> Response:
    return await _limits_page(request, context)


@workspace_required("settings.edit")
async def save_limits(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {name: form.get(name, "") for name in limits.LABELS}
    try:
        wanted = limits.parse_limits(values)
        async with workspace_changes(request, context.workspace.id) as session:
            changed = await limits.save_limits(session, actor=context.actor, limits=wanted)
    except Invalid as invalid:
        return await _limits_page(request, context, values, invalid.errors, status_code=422)
    url = f"{_base(context)}/limits"
    return redirect_with_flash(request, url, "Saved the swarm limits." if changed else "Nothing to change.")


routes: list[BaseRoute] = [
    Route("/w/{slug}/swarms", swarms_page, methods=["GET"]),
    Route("/w/{slug}/swarms", create, methods=["POST"]),
    Route("/w/{slug}/swarms/new", new_page, methods=["GET"]),
    # Before /swarms/{swarm}: "limits" is no swarm's id.
    Route("/w/{slug}/swarms/limits", limits_page, methods=["GET"]),
    Route("/w/{slug}/swarms/limits", save_limits, methods=["POST"]),
    Route("/w/{slug}/swarms/preview", preview_fragment, methods=["POST"]),
    Route("/w/{slug}/swarms/{swarm}", swarm_page, methods=["GET"]),
    Route("/w/{slug}/swarms/{swarm}/cancel", cancel, methods=["POST"]),
    Route("/w/{slug}/swarms/{swarm}/tasks/{task}", task_page, methods=["GET"]),
]
