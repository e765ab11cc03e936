"""The workspace settings page: name, the 2FA requirement, and the danger zone (transfer, leave, delete)."""

from __future__ import annotations

import logging
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.auth.models import User
from app.members.service import MemberError, list_members, transfer_ownership
from app.members.web import audit, database
from app.members.workspace_settings import MAX_NAME, delete_with_confirmation, update_settings
from app.tenants.context import WorkspaceContext
from app.web.flash import flash
from app.web.forms import client_ip, read_form
from app.web.guards import redirect, workspace_required
from app.web.templating import render

logger = logging.getLogger("marid.workspaces")


async def _page(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    others: list[Any] = []
    if context.can("ownership.transfer"):
        async with database(request).public_session() as db:
            others = [m for m in await list_members(db, context.workspace.id) if m.user_id != context.user.id]
    page = {
        "values": values or {"name": context.workspace.name},
        "errors": errors or {},
        "others": others,
        "max_name": MAX_NAME,
    }
    return render(request, "settings/index.html", page, status_code=status_code)


def _back(request: Request, context: WorkspaceContext, message: str) -> Response:
    response = redirect(request, f"/w/{context.workspace.slug}/settings")
    flash(request, response, message)
    return response


@workspace_required("workspace.view")
async def settings_page(request: Request, context: WorkspaceContext) -> Response:
    return await _page(request, context)


@workspace_required("settings.edit")
async def save_settings(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {"name": form.get("name", ""), "require_2fa": form.get("require_2fa", "")}
    try:
        async with database(request).public_session() as db:
            changes = await update_settings(
                db,
                workspace_id=context.workspace.id,
                actor=context.user,
                name=form.get("name", ""),
                require_2fa=form.get("require_2fa"),
            )
    except MemberError as refused:
        return await _page(request, context, values=values, errors={"_form": str(refused)}, status_code=422)
    if not changes:
        return _back(request, context, "Nothing to change.")
    if "name" in changes:
        await audit(request, context.workspace.id, "settings.changed", context.user.id, {"name": changes["name"]})
    if "require_2fa" in changes:
        await audit(request, context.workspace.id, "workspace.2fa_required_changed", context.user.id,
                    changes["require_2fa"])  # fmt: skip
    return _back(request, context, "Settings saved.")


@workspace_required("ownership.transfer")
async def transfer(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        async with database(request).public_session() as db:
            membership, previous = await transfer_ownership(
                db, workspace_id=context.workspace.id, actor_id=context.user.id, target_id=form.get("member", "")
            )
            new_owner = await db.get(User, membership.user_id)
            details = {
                "from": context.user.email,
                "to": new_owner.email if new_owner else str(membership.user_id),
                "new_owner_id": str(membership.user_id),
                "new_owner_previous_role": previous,
            }
    except MemberError as refused:
        return await _page(request, context, errors={"transfer": str(refused)}, status_code=422)
    await audit(request, context.workspace.id, "ownership.transferred", context.user.id, details)
    return _back(request, context, "Ownership transferred. You are now an admin.")


@workspace_required("workspace.delete")
async def delete(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        async with database(request).public_session() as db:
            workspace = await delete_with_confirmation(
                db,
                workspace_id=context.workspace.id,
                actor_id=context.user.id,
                confirmation=form.get("confirm_name", ""),
            )
    except MemberError as refused:
        return await _page(request, context, errors={"delete": str(refused)}, status_code=422)
    # The audit log went with the schema; the operator's log keeps the trace.
    ip = client_ip(request)
    logger.info("workspace %s (%s) deleted by user %s from %s", workspace.id, workspace.slug, context.user.id, ip)
    response = redirect(request, "/workspaces")
    flash(request, response, f"The workspace {workspace.name} was deleted.")
    return response


routes: list[BaseRoute] = [
    Route("/w/{slug}/settings", settings_page, methods=["GET"]),
    Route("/w/{slug}/settings", save_settings, methods=["POST"]),
    Route("/w/{slug}/settings/transfer", transfer, methods=["POST"]),
    Route("/w/{slug}/settings/delete", delete, methods=["POST"]),
]
