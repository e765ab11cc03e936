"""The workspace settings page: name, the 2FA requirement, and the danger zone (transfer, leave, delete)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.members import actions
from app.members.service import MemberError, list_members
from app.members.workspace_settings import MAX_NAME
from app.tenants.context import WorkspaceContext
from app.web.forms import client_ip, read_form
from app.web.guards import workspace_required
from app.web.pages import WorkspacePage, redirect_with_flash
from app.web.state import db_of


async def _data(request: Request, context: WorkspaceContext, values: dict[str, str] | None) -> dict[str, Any]:
    others: list[Any] = []
    if context.can("ownership.transfer"):
        async with db_of(request).public_session() as db:
            others = [m for m in await list_members(db, context.workspace.id) if m.user_id != context.user.id]
    return {"values": values or {"name": context.workspace.name}, "others": others, "max_name": MAX_NAME}


PAGE = WorkspacePage("settings/index.html", "settings", _data)


@workspace_required("workspace.view")
async def settings_page(request: Request, context: WorkspaceContext) -> Response:
    return await PAGE.show(request, context)


@workspace_required("settings.edit")
async def save_settings(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {"name": form.get("name", ""), "require_2fa": form.get("require_2fa", "")}
    try:
        _, changes = await actions.save_settings(
            db_of(request),
            context,
            ip=client_ip(request),
            name=form.get("name", ""),
            require_2fa=form.get("require_2fa"),
        )
    except MemberError as refused:
        return await PAGE.refuse(request, context, str(refused), values=values)
    return PAGE.back(request, context, "Settings saved." if changes else "Nothing to change.")


@workspace_required("ownership.transfer")
async def transfer(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        await actions.transfer_ownership(
            db_of(request), context, ip=client_ip(request), target_id=form.get("member", "")
        )
    except MemberError as refused:
        return await PAGE.refuse(request, context, str(refused), field="transfer")
    return PAGE.back(request, context, "Ownership transferred. You are now an admin.")


@workspace_required("workspace.delete")
async def delete(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        workspace = await actions.delete_workspace(
            db_of(request), context, ip=client_ip(request), confirmation=form.get("confirm_name", "")
        )
    except MemberError as refused:
        return await PAGE.refuse(request, context, str(refused), field="delete")
    return redirect_with_flash(request, "/workspaces", f"The workspace {workspace.name} was deleted.")


routes: list[BaseRoute] = [
    Route("/w/{slug}/settings", settings_page, methods=["GET"]),
    Route("/w/{slug}/settings", save_settings, methods=["POST"]),
    Route("/w/{slug}/settings/transfer", transfer, methods=["POST"]),
    Route("/w/{slug}/settings/delete", delete, methods=["POST"]),
]
