"""The runs list (filters by status and pipeline, pages back by run id) and "Start a run" (pipeline + task)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response

from app.errors import Invalid, NotFound, ServiceError
from app.live.bus import Topic
from app.live.sse import MAX_TOPICS, encode_cursor
from app.runs import service
from app.runs.pages.common import kick, pipeline_choices, run_url, runs_url
from app.runs.views import RUN_STATUSES, RunFilters
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.idempotency import submit_once
from app.web.pages import redirect_with_flash
from app.web.state import bus_of, db_of, workspace_changes
from app.web.templating import render

PAGE_SIZE = 25
ACTIVE = ("queued", "running", "paused")
LIST_REFRESH_ON = ("STEP_STARTED", "STEP_COMPLETE", "STEP_FAILED", "RUN_COMPLETE", "RUN_FAILED", "RUN_STATUS_CHANGED")
TASK_CHARS = service.MAX_TASK


def _filters(request: Request) -> tuple[RunFilters, dict[str, str]]:
    params = request.query_params
    status = params.get("status", "").strip()
    pipeline = params.get("pipeline", "").strip()[:64]
    before = params.get("before", "").strip()[:40]
    values = {"status": status, "pipeline": pipeline}
    filters = RunFilters(
        status=status if status in RUN_STATUSES else None,
        pipeline_id=pipeline or None,
        limit=PAGE_SIZE + 1,
        before=before or None,
    )
    return filters, values


async def show_runs(
    request: Request,
    context: WorkspaceContext,
    *,
    start_values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    filters, values = _filters(request)
    problems: dict[str, str] = {}
    if values["status"] and filters.status is None:
        problems["status"] = "Not a run status."
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            runs = await service.list_runs(session, filters)
    except Invalid as invalid:
        problems |= invalid.errors
        async with db_of(request).tenant_session(context.workspace.id) as session:
            runs = await service.list_runs(session, RunFilters(status=filters.status, limit=PAGE_SIZE + 1))
    more = len(runs) > PAGE_SIZE
    runs = runs[:PAGE_SIZE]
    query = {key: value for key, value in values.items() if value}
    if filters.before:
        query["before"] = filters.before
    # The runs still moving are followed live (their topics, from the position read now): the list re-reads
    # itself when one of them starts or ends a step, or ends.
    topics = [Topic.run(run.id) for run in runs if run.status in ACTIVE][:MAX_TOPICS]
    live_url = None
    if topics:
        cursor = encode_cursor(topics, await bus_of(request).positions(context.workspace.id, topics))
        names = ",".join(topic.name for topic in topics)
        live_url = f"/w/{context.workspace.slug}/events?{urlencode({'topics': names, 'since': cursor})}"
    page: dict[str, Any] = {
        "runs": runs,
        "filters": values,
        "statuses": RUN_STATUSES,
        "pipelines": await pipeline_choices(request, context),
        "filter_errors": problems,
        "next_url": f"{runs_url(context)}?{urlencode({**query, 'before': runs[-1].id})}" if more and runs else None,
        "paged": bool(filters.before),
        "start_values": start_values or {"pipeline": values["pipeline"], "task": ""},
        "errors": errors or {},
        "start_url": runs_url(context),
        "live_url": live_url,
        "list_url": f"{runs_url(context)}?{urlencode(query)}" if query else runs_url(context),
        "refresh_on": ",".join(LIST_REFRESH_ON),
    }
    return render(request, "runs/index.html", page, status_code=status_code)


@workspace_required("workspace.view")
async def runs_page(request: Request, context: WorkspaceContext) -> Response:
    return await show_runs(request, context)


@workspace_required("workspace.work")
async def start(request: Request, context: WorkspaceContext) -> Response:
    """Start a run (from the runs list or a pipeline's page); a start sent twice starts once. A refusal shows the
    runs list with the form as typed and why."""
    form = await read_form(request, max_chars=TASK_CHARS + 1)
    values = {"pipeline": form.get("pipeline", "")[:64], "task": form.get("task", "")}

    async def act() -> Response:
        try:
            async with workspace_changes(request, context.workspace.id) as session:
                run = await service.start_run(
                    session, pipeline_id=values["pipeline"], task=values["task"], actor=context.actor
                )
        except ServiceError as refused:
            errors = refused.errors if isinstance(refused, Invalid) else {"pipeline": refused.message}
            if isinstance(refused, NotFound):
                errors = {"pipeline": "Choose a pipeline of this workspace."}
            return await show_runs(
                request, context, start_values=values, errors=errors, status_code=page_status(refused, not_found=422)
            )
        await kick(request, context, run.id)
        return redirect_with_flash(request, run_url(context, run.id), f"Started a run of {run.pipeline_name}.")

    return await submit_once(request, form, scope=f"runs:{context.workspace.id}", act=act)
