"""The secrets pages: the list (masked) with the form to add one, and a secret's page (description, a new
value, which agents get it, delete). A value goes in through a password field and never comes out: no page
renders it, not even to whoever typed it, and a refused form is shown again without it."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.agents.service import list_agents
from app.errors import Invalid, NotFound, ServiceError
from app.members.service import member_labels
from app.secrets import service
from app.secrets.values import DESCRIPTION_MAX, VALUE_MAX
from app.tenants.context import WorkspaceContext
from app.web.errors import page_status
from app.web.forms import read_form, read_list
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import db_of, secrets_of, workspace_changes
from app.web.templating import render

T = TypeVar("T")
# Read a little more than a value may hold, so that one too long is refused with its reason, not dropped.
_FORM_MAX_CHARS = 2 * VALUE_MAX


def _base(context: WorkspaceContext) -> str:
    return f"/w/{context.workspace.slug}/secrets"


def _errors(refused: ServiceError) -> dict[str, str]:
    return refused.errors if isinstance(refused, Invalid) else {"_form": refused.message}


# --- the list ------------------------------------------------------------------------------------------------


async def _show_list(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with db_of(request).tenant_session(context.workspace.id) as session:
        views = await service.list_secrets(session)
    page = {
        "views": views,
        "values": values or {"name": "", "description": ""},
        "errors": errors or {},
        "can_manage": context.can("secrets.manage"),
        "description_max": DESCRIPTION_MAX,
        "value_max": VALUE_MAX,
    }
    return render(request, "secrets/index.html", page, status_code=status_code)


@workspace_required("workspace.view")
async def secrets_page(request: Request, context: WorkspaceContext) -> Response:
    return await _show_list(request, context)


@workspace_required("secrets.manage")
async def create(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request, max_chars=_FORM_MAX_CHARS)
    # What the form shows again if refused: never the value.
    values = {"name": form.get("name", "")[:200], "description": form.get("description", "")[:400]}
    try:
        if "value" not in form:
            raise Invalid(f"Enter the secret's value (at most {VALUE_MAX:,} characters).", field="value")
        async with workspace_changes(request, context.workspace.id) as session:
            secret = await service.create_secret(
                session,
                secrets_of(request),
                context.workspace.id,
                context.actor,
                name=form.get("name", ""),
                value=form["value"],
                description=form.get("description", ""),
            )
    except ServiceError as refused:
        status = page_status(refused)
        return await _show_list(request, context, values=values, errors=_errors(refused), status_code=status)
    message = f"Added {secret.name}. Its value is sealed: nobody can see it again, you included."
    return redirect_with_flash(request, f"{_base(context)}/{secret.id}", message)


# --- one secret ----------------------------------------------------------------------------------------------


async def _show_secret(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    try:
        async with db_of(request).tenant_session(context.workspace.id) as session:
            view = await service.get_secret(session, request.path_params["secret_id"])
            agents = await list_agents(session)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    secret = view.secret
    people = {str(uid) for uid in (secret.created_by, secret.updated_by) if uid is not None}
    async with db_of(request).public_session() as db:
        names = await member_labels(db, people)
    page: dict[str, Any] = {
        "view": view,
        "secret": secret,
        "agents": agents,
        "granted": {agent_id for agent_id, _ in view.agents},
        "created_by": names.get(str(secret.created_by), ""),
        "updated_by": names.get(str(secret.updated_by), ""),
        "values": values or {"description": secret.description},
        "errors": errors or {},
        "can_manage": context.can("secrets.manage"),
        "description_max": DESCRIPTION_MAX,
        "value_max": VALUE_MAX,
    }
    return render(request, "secrets/detail.html", page, status_code=status_code)


@workspace_required("workspace.view")
async def secret_page(request: Request, context: WorkspaceContext) -> Response:
    return await _show_secret(request, context)


async def _change(
    request: Request, context: WorkspaceContext, action: Callable[[AsyncSession], Awaitable[T]], values: dict[str, str]
) -> T | Response:
    """``action`` run in a unit of work on the workspace: its result, or the secret's page with its refusal."""
    try:
        async with workspace_changes(request, context.workspace.id) as session:
            return await action(session)
    except NotFound as missing:
        raise HTTPException(404, missing.message) from None
    except ServiceError as refused:
        status = page_status(refused)
        return await _show_secret(request, context, values=values, errors=_errors(refused), status_code=status)


def _here(request: Request, context: WorkspaceContext) -> str:
    return f"{_base(context)}/{request.path_params['secret_id']}"


@workspace_required("secrets.manage")
async def describe(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    description = form.get("description", "")
    secret_id = request.path_params["secret_id"]

    async def action(session: AsyncSession) -> bool:
        return (await service.describe_secret(session, context.actor, secret_id, description))[1]

    changed = await _change(request, context, action, {"description": description[:400]})
    if isinstance(changed, Response):
        return changed
    return redirect_with_flash(
        request, _here(request, context), "Description saved." if changed else "Nothing to change."
    )


@workspace_required("secrets.manage")
async def replace(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request, max_chars=_FORM_MAX_CHARS)
    value = form.get("value")
    secret_id = request.path_params["secret_id"]

    async def action(session: AsyncSession) -> str:
        if value is None:
            raise Invalid(f"Enter the new value (at most {VALUE_MAX:,} characters).", field="value")
        secret = await service.replace_value(
            session, secrets_of(request), context.workspace.id, context.actor, secret_id, value
        )
        return secret.name

    name = await _change(request, context, action, {})
    if isinstance(name, Response):
        return name
    message = f"Replaced the value of {name}. Agents get the new one from their next step on."
    return redirect_with_flash(request, _here(request, context), message)


@workspace_required("secrets.manage")
async def grants(request: Request, context: WorkspaceContext) -> Response:
    chosen = await read_list(request, "agents")
    secret_id = request.path_params["secret_id"]

    async def action(session: AsyncSession) -> tuple[list[str], list[str]]:
        return await service.set_grants(session, context.actor, secret_id, chosen)

    result = await _change(request, context, action, {})
    if isinstance(result, Response):
        return result
    added, removed = result
    parts = [f"now given to {', '.join(added)}"] if added else []
    parts += [f"taken from {', '.join(removed)}"] if removed else []
    message = ("Saved: " + "; ".join(parts) + ".") if parts else "Nothing to change."
    return redirect_with_flash(request, _here(request, context), message)


@workspace_required("secrets.manage")
async def delete(request: Request, context: WorkspaceContext) -> Response:
    secret_id = request.path_params["secret_id"]

    async def action(session: AsyncSession) -> str:
        return (await service.delete_secret(session, context.actor, secret_id)).name

    name = await _change(request, context, action, {})
    if isinstance(name, Response):
        return name
    return redirect_with_flash(request, _base(context), f"Deleted {name}; agents no longer get it.")


routes: list[BaseRoute] = [
    Route("/w/{slug}/secrets", secrets_page, methods=["GET"]),
    Route("/w/{slug}/secrets", create, methods=["POST"]),
    Route("/w/{slug}/secrets/{secret_id}", secret_page, methods=["GET"]),
    Route("/w/{slug}/secrets/{secret_id}", describe, methods=["POST"]),
    Route("/w/{slug}/secrets/{secret_id}/value", replace, methods=["POST"]),
    Route("/w/{slug}/secrets/{secret_id}/grants", grants, methods=["POST"]),
    Route("/w/{slug}/secrets/{secret_id}/delete", delete, methods=["POST"]),
]
