"""A run's page: status and controls, the step timeline and graph, each step's outputs and cost, the live
stream (text, thinking and tool calls as they happen), the run's files; a step visit's own page with its input,
outputs, earlier attempts and the diff of the files it changed.

The page is rendered from Postgres; the stream (``/events``) replays the run's retained events from the start
and then goes live, and the state section re-reads itself when a step starts or ends.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from markupsafe import Markup
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.live.bus import Event, Topic
from app.live.sse import event_stream
from app.pipelines.svg import render_svg
from app.runs.files import GitError, run_files, step_diff
from app.runs.pages.common import run_or_404, run_url
from app.runs.pages.timeline import render_timeline
from app.runs.state import pinned_pipeline
from app.runs.views import RunView
from app.tenants.context import WorkspaceContext
from app.tenants.permissions import permissions_of
from app.web.guards import workspace_required
from app.web.state import bus_of, settings_of
from app.web.templating import render, templates
from app.web.viewer import still_allowed

# What the live log shows (the events its sse-swap listens to).
STREAMED = (
    "STEP_STARTED",
    "STEP_OUTPUT",
    "STEP_THINKING",
    "TOOL_CALL_START",
    "TOOL_CALL_END",
    "FILE_CHANGED",
    "STEP_COMPLETE",
    "STEP_FAILED",
    "STEP_RETRYING",
    "STEP_CANCELLED",
    "AGENT_MESSAGE",
    "RUN_COMPLETE",
    "RUN_FAILED",
    "RUN_STATUS_CHANGED",
)
# The streamed events after which the state sections re-read themselves (marid.js, data-refresh-on).
REFRESH_ON = ("STEP_STARTED", "STEP_COMPLETE", "STEP_FAILED", "STEP_RETRYING", "STEP_CANCELLED",
              "RUN_COMPLETE", "RUN_FAILED", "RUN_STATUS_CHANGED")  # fmt: skip
assert set(REFRESH_ON) <= set(STREAMED), "marid.js only sees the events the log listens to"
MAX_SHOWN = 4000  # characters of a tool's arguments or result shown in its card
_event = templates.env.get_template("runs/_event.html")


def _short(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, indent=1, default=str)
    return text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + f"… ({len(text) - MAX_SHOWN} more characters)"


def render_stream_event(event: Event) -> str:
    """An event of the run as an item of the live log: autoescaped HTML (agent output is untrusted)."""
    payload = dict(event.payload)
    for key in ("args", "result"):
        if key in payload:
            payload[key] = _short(payload[key])
    return _event.render(type=event.type.value, p=payload)


def _graph(run: RunView) -> Markup | None:
    try:
        pipeline = pinned_pipeline(run.pipeline_yaml)
    except ValueError:
        return None
    return Markup(render_svg(pipeline, run.step_statuses(), id_prefix="run-graph"))


def _files(request: Request, context: WorkspaceContext, run: RunView) -> list[Any]:
    return run_files(Path(settings_of(request).sandbox_files_dir), context.workspace.id, run.id, limit=500)


@workspace_required("workspace.view")
async def run_page(request: Request, context: WorkspaceContext) -> Response:
    run = await run_or_404(request, context)
    files = await asyncio.to_thread(_files, request, context, run)
    page = {
        "run": run,
        "timeline": render_timeline(run, datetime.now(UTC)),
        "graph": _graph(run),
        "files": files,
        "url": run_url(context, run.id),
        "streamed": ",".join(STREAMED),
        "refresh_on": ",".join(REFRESH_ON),
        "step_ids": _step_ids(run),
        "errors": {},
        "values": {},
    }
    return render(request, "runs/detail.html", page)


def _step_ids(run: RunView) -> list[str]:
    try:
        return [step.id for step in pinned_pipeline(run.pipeline_yaml).steps]
    except ValueError:
        return sorted({step.step_id for step in run.steps})


@workspace_required("workspace.view")
async def step_page(request: Request, context: WorkspaceContext) -> Response:
    """One visit of a step: what it was asked, what it answered, its earlier attempts, and its files' diff."""
    run = await run_or_404(request, context)
    visit = next((step for step in run.steps if step.id == request.path_params["visit"]), None)
    if visit is None:
        raise HTTPException(404, "No such step in this run.")
    diff = ""
    if visit.commit:
        root = Path(settings_of(request).sandbox_files_dir)
        try:
            diff = await asyncio.to_thread(step_diff, root, context.workspace.id, run.id, visit.commit)
        except (GitError, ValueError, OSError):
            diff = ""
    lines = [(_diff_kind(line), line) for line in diff.splitlines()]
    page = {"run": run, "step": visit, "diff": lines, "url": run_url(context, run.id)}
    return render(request, "runs/step.html", page)


def _diff_kind(line: str) -> str:
    if line.startswith(("+++", "---", "diff ", "index ")):
        return "meta"
    return {"+": "add", "-": "del", "@": "hunk"}.get(line[:1], "same")


@workspace_required("workspace.view")
async def run_events(request: Request, context: WorkspaceContext) -> Response:
    """The run's live stream as HTML items (``?since=0`` replays what Redis still keeps of it)."""
    run = await run_or_404(request, context)
    workspace_id = context.workspace.id

    allowed = still_allowed(request, context)

    return await event_stream(
        request,
        request.app.state.hub,
        bus_of(request),
        workspace_id,
        [Topic.run(run.id)],
        allowed,
        render_stream_event,
        permissions=permissions_of(context.role),
    )
