"""Onboarding: "Add your team of agents", the starter roster as checkboxes (all ticked), or skip."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.agents import service
from app.agents.pages.roster import add_chosen, added_message
from app.agents.roster import starters
from app.errors import Invalid, ServiceError
from app.onboarding.steps import STEPS, next_step
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_list
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of
from app.web.templating import render

STEP = "agents"


async def _show(
    request: Request,
    context: WorkspaceContext,
    *,
    chosen: set[str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        existing = {agent.id for agent in await service.list_agents(session)}
    page = {
        "steps": STEPS,
        "current_step": STEP,
        "starters": starters(),
        "existing": existing,
        "chosen": chosen if chosen is not None else {item.id for item in starters()},
        "errors": errors or {},
        "skip_url": next_step(STEP, context.workspace.slug),
    }
    return render(request, "onboarding/agents.html", page, status_code=status_code)


@workspace_required("workspace.work")
async def step_page(request: Request, context: WorkspaceContext) -> Response:
    return await _show(request, context)


@workspace_required("workspace.work")
async def add(request: Request, context: WorkspaceContext) -> Response:
    try:
        added = await add_chosen(request, context)
    except ServiceError as refused:
        errors = refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}
        chosen = set(await read_list(request, "roster"))
        return await _show(request, context, chosen=chosen, errors=errors, status_code=page_status(refused))
    return redirect_with_flash(request, next_step(STEP, context.workspace.slug), added_message(added))
