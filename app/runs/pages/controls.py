"""The human controls of a run, each a POST with the CSRF token: cancel, pause, resume, restart the run,
restart a step with added context, inject context into the running step. Each changes Postgres through the
runs service, then kicks the engine, and goes back to the run's page with what happened (or why not)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.audit.actor import Actor
from app.errors import NotFound, ServiceError
from app.runs import service
from app.runs.pages.common import kick, run_url
from app.tenants.context import WorkspaceContext
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import workspace_changes

Change = Callable[[AsyncSession, str, Actor], Awaitable[object]]


async def _control(
    request: Request, context: WorkspaceContext, change: Change, done: str, *, follow_new: bool = False
) -> Response:
    run_id = request.path_params["run"]
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            result = await change(session, run_id, context.actor)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    except ServiceError as refused:
        return redirect_with_flash(request, run_url(context, run_id), refused.message, "error")
    target = getattr(result, "id", run_id) if follow_new else run_id
    await kick(request, context, target)
    return redirect_with_flash(request, run_url(context, target), done)


@workspace_required("workspace.work")
async def cancel(request: Request, context: WorkspaceContext) -> Response:
    return await _control(request, context, service.cancel_run, "Cancelled the run.")


@workspace_required("workspace.work")
async def pause(request: Request, context: WorkspaceContext) -> Response:
    return await _control(request, context, service.pause_run, "Paused: no new step starts until you resume.")


@workspace_required("workspace.work")
async def resume(request: Request, context: WorkspaceContext) -> Response:
    return await _control(request, context, service.resume_run, "Resumed the run.")


@workspace_required("workspace.work")
async def restart(request: Request, context: WorkspaceContext) -> Response:
    """A new run of the same pinned version and task; its page is where this goes."""
    return await _control(request, context, service.restart_run, "Started the run again.", follow_new=True)


@workspace_required("workspace.work")
async def restart_step(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request, max_chars=service.MAX_CONTEXT + 1)
    step_id, added = form.get("step", ""), form.get("context", "")

    async def change(session: AsyncSession, run_id: str, actor: Actor) -> object:
        return await service.restart_step(session, run_id, step_id, added, actor)

    return await _control(request, context, change, f"Restarted step {step_id[:64]}.")


@workspace_required("workspace.work")
async def inject(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request, max_chars=service.MAX_CONTEXT + 1)
    text = form.get("text", "")

    async def change(session: AsyncSession, run_id: str, actor: Actor) -> object:
        return await service.inject_context(session, run_id, text, actor)

    return await _control(request, context, change, "Added the context to the running step.")
