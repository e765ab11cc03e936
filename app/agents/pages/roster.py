"""The starter roster on the agents page: pick one or several starters and add them at once."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from app.agents import service
from app.agents.models import Agent
from app.agents.roster import starters
from app.errors import Invalid, ServiceError
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_list
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, workspace_changes
from app.web.templating import render


def added_message(agents: list[Agent]) -> str:
    if len(agents) == 1:
        return f"Added {agents[0].emoji} {agents[0].name}."
    return f"Added {len(agents)} agents: {', '.join(agent.name for agent in agents)}."


async def add_chosen(request: Request, context: WorkspaceContext) -> list[Agent]:
    """Add the starters ticked on the form (field ``roster``); a refusal raises and adds none."""
    chosen = await read_list(request, "roster")
    async with workspace_changes(request, context.workspace.id) as session:
        return await service.add_from_roster(session, context.actor, chosen)


async def _show(
    request: Request,
    context: WorkspaceContext,
    *,
    chosen: list[str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        existing = {agent.id for agent in await service.list_agents(session)}
    page = {
        "starters": starters(),
        "existing": existing,
        "chosen": set(chosen) if chosen is not None else {item.id for item in starters()} - existing,
        "errors": errors or {},
    }
    return render(request, "agents/roster.html", page, status_code=status_code)


@workspace_required("workspace.work")
async def roster_page(request: Request, context: WorkspaceContext) -> Response:
    return await _show(request, context)


@workspace_required("workspace.work")
async def add(request: Request, context: WorkspaceContext) -> Response:
    try:
        added = await add_chosen(request, context)
    except ServiceError as refused:
        errors = refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}
        chosen = await read_list(request, "roster")
        return await _show(request, context, chosen=chosen, errors=errors, status_code=page_status(refused))
    return redirect_with_flash(request, f"/w/{context.workspace.slug}/agents", added_message(added))
