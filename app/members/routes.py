"""The members page: who is in the workspace, invitations, roles, removal and leaving.

Also the one list of this domain's routes (app.main includes it): the invitation link, the onboarding step,
the workspace settings page and the audit log page are exported from here too.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.audit import routes as audit_routes
from app.auth.models import User
from app.members import invitations
from app.members.service import (
    MAX_INVITES_AT_ONCE,
    MemberError,
    change_role,
    leave,
    list_members,
    pending_invitations,
    remove_member,
    revoke_invitation,
)
from app.members.web import TooManyRequests, audit, database, permission_table
from app.tenants.context import WorkspaceContext
from app.tenants.permissions import assignable_roles
from app.web.flash import flash
from app.web.forms import read_form
from app.web.guards import redirect, workspace_required
from app.web.templating import render
from app.workspaces import settings as settings_routes


async def _page(
    request: Request,
    context: WorkspaceContext,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    async with database(request).public_session() as db:
        members = await list_members(db, context.workspace.id)
        pending = await pending_invitations(db, context.workspace.id) if context.can("members.invite") else []
    page: dict[str, Any] = {
        "members": members,
        "invitations": pending,
        "assignable": assignable_roles(context.role),
        "permissions": permission_table(),
        "values": values or {"role": "member"},
        "errors": errors or {},
        "max_invites": MAX_INVITES_AT_ONCE,
    }
    return render(request, "members/index.html", page, status_code=status_code)


def _back(request: Request, context: WorkspaceContext, message: str, kind: str = "success") -> Response:
    response = redirect(request, f"/w/{context.workspace.slug}/members")
    flash(request, response, message, kind)
    return response


@workspace_required("members.view")
async def members_page(request: Request, context: WorkspaceContext) -> Response:
    return await _page(request, context)


@workspace_required("members.invite")
async def invite_members(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {"emails": form.get("emails", ""), "role": form.get("role", "member")}
    try:
        count = await invitations.send_invitations(request, context, form)
    except MemberError as refused:
        status = 429 if isinstance(refused, TooManyRequests) else 422
        return await _page(request, context, values=values, errors={"emails": str(refused)}, status_code=status)
    return _back(request, context, invitations.sent_message(count))


@workspace_required("members.invite")
async def revoke(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with database(request).public_session() as db:
            invitation = await revoke_invitation(
                db,
                workspace_id=context.workspace.id,
                actor_id=context.user.id,
                invitation_id=request.path_params["invitation_id"],
            )
            details = {"invitation_id": str(invitation.id), "email": invitation.email, "role": invitation.role}
    except MemberError as refused:
        return await _page(request, context, errors={"_form": str(refused)}, status_code=422)
    await audit(request, context.workspace.id, "invitation.revoked", context.user.id, details)
    return _back(request, context, f"Invitation to {details['email']} withdrawn.")


@workspace_required("members.manage")
async def set_role(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        async with database(request).public_session() as db:
            membership, previous = await change_role(
                db,
                workspace_id=context.workspace.id,
                actor_id=context.user.id,
                target_id=request.path_params["user_id"],
                role=form.get("role", ""),
            )
            email = await _email(db, membership.user_id)
            details = {"member_id": str(membership.user_id), "email": email, "from": previous, "to": membership.role}
    except MemberError as refused:
        return await _page(request, context, errors={"_form": str(refused)}, status_code=422)
    await audit(request, context.workspace.id, "member.role_changed", context.user.id, details)
    return _back(request, context, f"{email} is now {details['to']}.")


@workspace_required("members.manage")
async def remove(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with database(request).public_session() as db:
            membership = await remove_member(
                db,
                workspace_id=context.workspace.id,
                actor_id=context.user.id,
                target_id=request.path_params["user_id"],
            )
            email = await _email(db, membership.user_id)
            details = {"member_id": str(membership.user_id), "email": email, "role": membership.role}
    except MemberError as refused:
        return await _page(request, context, errors={"_form": str(refused)}, status_code=422)
    await audit(request, context.workspace.id, "member.removed", context.user.id, details)
    return _back(request, context, f"{email} was removed from the workspace.")


@workspace_required("workspace.view")
async def leave_workspace(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with database(request).public_session() as db:
            membership = await leave(db, workspace_id=context.workspace.id, user_id=context.user.id)
    except MemberError as refused:
        response = redirect(request, f"/w/{context.workspace.slug}/settings")
        flash(request, response, str(refused), "error")
        return response
    await audit(request, context.workspace.id, "member.left", context.user.id, {"role": membership.role})
    response = redirect(request, "/workspaces")
    flash(request, response, f"You left {context.workspace.name}.")
    return response


async def _email(db: AsyncSession, user_id: uuid.UUID) -> str:
    user = await db.get(User, user_id)
    return user.email if user is not None else str(user_id)


routes: list[BaseRoute] = [
    Route("/w/{slug}/members", members_page, methods=["GET"]),
    Route("/w/{slug}/members/invite", invite_members, methods=["POST"]),
    Route("/w/{slug}/invitations/{invitation_id}/revoke", revoke, methods=["POST"]),
    Route("/w/{slug}/members/{user_id}/role", set_role, methods=["POST"]),
    Route("/w/{slug}/members/{user_id}/remove", remove, methods=["POST"]),
    Route("/w/{slug}/leave", leave_workspace, methods=["POST"]),
    *invitations.routes,
    *settings_routes.routes,
    *audit_routes.routes,
]
