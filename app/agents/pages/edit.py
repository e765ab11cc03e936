"""The agent form: create (blank, or from a starter), edit with a live preview of the assembled system prompt
(posted by htmx as the persona is typed; nothing is saved), clone and delete."""

from __future__ import annotations

from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response

from app.agents import service
from app.agents.draft import SECTIONS, AgentDraft, check_draft, suggest_id
from app.agents.form_values import FORM_MAX_CHARS, draft_from_form, form_values_of
from app.agents.model_hook import known_models
from app.agents.models import Agent
from app.agents.pages.view import show_agent
from app.agents.prompt import assemble_system_prompt
from app.agents.roster import starter
from app.agents.tools import CATALOGUE, DEFAULT_TOOLS, TOOLS
from app.errors import Invalid, NotFound, ServiceError
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_form, read_list
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, workspace_changes
from app.web.templating import render, render_block

TEMPLATE = "agents/form.html"


def _base(context: WorkspaceContext) -> str:
    return f"/w/{context.workspace.slug}/agents"


async def _show_form(
    request: Request,
    context: WorkspaceContext,
    *,
    agent: Agent | None,
    values: dict[str, str],
    tools: list[str] | tuple[str, ...],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        suggestions = await known_models(session)
    base = _base(context)
    draft = _preview_draft(values, list(tools))
    page: dict[str, Any] = {
        "agent": agent,
        "values": values,
        "chosen_tools": set(tools),
        "catalogue": CATALOGUE,
        "sections": SECTIONS,
        "errors": errors or {},
        "prompt": assemble_system_prompt(draft),
        "problems": [],
        "model_suggestions": suggestions,
        "action": f"{base}/{agent.id}" if agent else base,
        "cancel": f"{base}/{agent.id}" if agent else base,
        "preview_url": f"{base}/preview",
    }
    return render(request, TEMPLATE, page, status_code=status_code)


def _preview_draft(values: dict[str, str], tools: list[str]) -> AgentDraft:
    """The draft as typed, leniently: whatever cannot be read keeps its default (for the preview only)."""
    base = AgentDraft(name=values.get("name", ""), tools=())
    try:
        draft = draft_from_form(values, tools, base, strict=False)
    except Invalid:  # not raised without strict, but never let the preview fail
        draft = base
    return draft.with_changes(tools=tuple(name for name in draft.tools if name in TOOLS))


# --- create --------------------------------------------------------------------------------------------------


@workspace_required("workspace.work")
async def new_page(request: Request, context: WorkspaceContext) -> Response:
    template = starter(request.query_params.get("template", ""))
    if template is not None:
        values = form_values_of(template.draft, template.id)
        values["template"] = template.id
        return await _show_form(request, context, agent=None, values=values, tools=template.draft.tools)
    values = form_values_of(AgentDraft(name="", emoji=""))
    return await _show_form(request, context, agent=None, values=values, tools=DEFAULT_TOOLS)


async def _read(request: Request) -> tuple[dict[str, str], list[str]]:
    values = await read_form(request, max_chars=FORM_MAX_CHARS)
    return values, await read_list(request, "tools")


@workspace_required("workspace.work")
async def create(request: Request, context: WorkspaceContext) -> Response:
    values, tools = await _read(request)
    template = starter(values.get("template", ""))
    agent_id = values.get("id", "") or suggest_id(values.get("name", ""))
    try:
        draft = draft_from_form(values, tools, AgentDraft(name=""))
        async with workspace_changes(request, context.workspace.id) as session:
            agent = await service.create_agent(
                session, context.actor, agent_id, draft, template=template.id if template else None
            )
    except ServiceError as refused:
        errors = refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}
        return await _show_form(
            request, context, agent=None, values=values, tools=tools, errors=errors, status_code=page_status(refused)
        )
    return redirect_with_flash(request, f"{_base(context)}/{agent.id}", f"Created {agent.emoji} {agent.name}.")


# --- edit ----------------------------------------------------------------------------------------------------


async def _agent(request: Request, context: WorkspaceContext) -> Agent:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            return await service.get_agent(session, request.path_params["agent"])
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None


@workspace_required("workspace.work")
async def edit_page(request: Request, context: WorkspaceContext) -> Response:
    agent = await _agent(request, context)
    values = form_values_of(service.draft_of(agent), agent.id)
    return await _show_form(request, context, agent=agent, values=values, tools=agent.tools)


@workspace_required("workspace.work")
async def update(request: Request, context: WorkspaceContext) -> Response:
    agent = await _agent(request, context)
    values, tools = await _read(request)
    values["id"] = agent.id
    try:
        draft = draft_from_form(values, tools, service.draft_of(agent))
        async with workspace_changes(request, context.workspace.id) as session:
            saved, changed = await service.update_agent(session, context.actor, agent.id, draft)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    except ServiceError as refused:
        errors = refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}
        return await _show_form(
            request, context, agent=agent, values=values, tools=tools, errors=errors, status_code=page_status(refused)
        )
    message = f"Saved {saved.name}." if changed else "Nothing to change."
    return redirect_with_flash(request, f"{_base(context)}/{saved.id}", message, "success" if changed else "info")


@workspace_required("workspace.work")
async def preview(request: Request, context: WorkspaceContext) -> Response:
    """The assembled system prompt of the form as typed (htmx swaps it into the page); saves nothing."""
    values, tools = await _read(request)
    problems: list[str] = []
    try:
        strict = draft_from_form(values, tools, AgentDraft(name=values.get("name", "")))
        check_draft(strict)
    except Invalid as invalid:
        problems = list(dict.fromkeys(invalid.errors.values()))
    page = {"prompt": assemble_system_prompt(_preview_draft(values, tools)), "problems": problems}
    return HTMLResponse(render_block(request, TEMPLATE, "preview", page), headers={"Cache-Control": "no-store"})


# --- clone and delete ----------------------------------------------------------------------------------------


@workspace_required("workspace.work")
async def clone(request: Request, context: WorkspaceContext) -> Response:
    agent = await _agent(request, context)
    values = await read_form(request)
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            copy = await service.clone_agent(
                session, context.actor, agent.id, values.get("id", ""), values.get("name", "")
            )
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    except ServiceError as refused:
        errors = refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}
        errors = {f"clone_{key}" if key in {"id", "name"} else key: text for key, text in errors.items()}
        clone_values = {"clone_id": values.get("id", ""), "clone_name": values.get("name", "")}
        return await show_agent(
            request, context, agent.id, errors=errors, values=clone_values, status_code=page_status(refused)
        )
    message = f"Cloned {agent.name} as {copy.name} (its pulse is off)."
    return redirect_with_flash(request, f"{_base(context)}/{copy.id}", message)


@workspace_required("workspace.work")
async def delete(request: Request, context: WorkspaceContext) -> Response:
    agent = await _agent(request, context)
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            gone = await service.delete_agent(session, context.actor, agent.id)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    except ServiceError as refused:
        errors = {"delete": refused.message}
        return await show_agent(request, context, agent.id, errors=errors, status_code=page_status(refused))
    return redirect_with_flash(request, _base(context), f"Deleted {gone.name}.")
