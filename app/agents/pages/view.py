"""The agents list and an agent's own page (its persona, the assembled system prompt, its secrets)."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from app.agents import service
from app.agents.draft import SECTIONS
from app.agents.models import Agent
from app.agents.prompt import assemble_system_prompt
from app.agents.roster import starters
from app.agents.tools import TOOLS
from app.errors import NotFound
from app.members.service import member_labels
from app.secrets.service import secrets_of_agent
from app.tenants.context import WorkspaceContext
from app.web.guards import workspace_required
from app.web.state import db_of
from app.web.templating import render


@workspace_required("workspace.view")
async def agents_page(request: Request, context: WorkspaceContext) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        agents = await service.list_agents(session)
    missing = [item for item in starters() if item.id not in {agent.id for agent in agents}]
    page = {"agents": agents, "roster_left": len(missing), "max_agents": service.MAX_AGENTS}
    return render(request, "agents/index.html", page)


async def agent_page_data(request: Request, context: WorkspaceContext, agent: Agent) -> dict[str, Any]:
    """What an agent's page shows (also behind its refused clone and delete forms)."""
    async with db_of(request).tenant_session(context.workspace.id) as session:
        secrets = await secrets_of_agent(session, agent.id)
    people = {str(uid) for uid in (agent.created_by, agent.updated_by) if uid is not None}
    async with db_of(request).public_session() as db:
        names = await member_labels(db, people)
    return {
        "agent": agent,
        "sections": [(label, getattr(agent, key)) for key, label, _ in SECTIONS],
        "prompt": assemble_system_prompt(agent),
        "tools": [TOOLS[name] for name in agent.tools if name in TOOLS],
        "pulse": agent.pulse,
        "secrets": secrets,
        "created_by": names.get(str(agent.created_by), "") if agent.created_by else "",
        "updated_by": names.get(str(agent.updated_by), "") if agent.updated_by else "",
        "clone_id": f"{agent.id[:43]}-copy",
        "errors": {},
        "values": {},
    }


async def show_agent(
    request: Request,
    context: WorkspaceContext,
    agent_id: str,
    *,
    errors: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            agent = await service.get_agent(session, agent_id)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    page = await agent_page_data(request, context, agent)
    page["errors"] = errors or {}
    page["values"] = values or {}
    return render(request, "agents/detail.html", page, status_code=status_code)


@workspace_required("workspace.view")
async def agent_page(request: Request, context: WorkspaceContext) -> Response:
    return await show_agent(request, context, request.path_params["agent"])
