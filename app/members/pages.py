"""The members page: who is in the workspace, invitations, roles, removal and leaving.

Also the one list of this domain's routes (app.main includes it): the invitation link, the onboarding step,
the workspace settings page and the audit log page are exported from here too.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.audit import pages as audit_routes
from app.members import actions, invitations
from app.members.service import MAX_INVITES_AT_ONCE, MemberError, list_members, pending_invitations
from app.members.web import TooManyRequests, permission_table
from app.tenants.context import WorkspaceContext
from app.tenants.permissions import assignable_roles
from app.web.forms import client_ip, read_form
from app.web.guards import workspace_required
from app.web.pages import WorkspacePage, redirect_with_flash
from app.web.state import db_of
from app.workspaces import pages as workspace_pages


async def _data(request: Request, context: WorkspaceContext, values: dict[str, str] | None) -> dict[str, Any]:
    async with db_of(request).public_session() as db:
        members = await list_members(db, context.workspace.id)
        pending = await pending_invitations(db, context.workspace.id) if context.can("members.invite") else []
    return {
        "members": members,
        "invitations": pending,
        "assignable": assignable_roles(context.role),
        "permissions": permission_table(),
        "values": values or {"role": "member"},
        "max_invites": MAX_INVITES_AT_ONCE,
    }


PAGE = WorkspacePage("members/index.html", "members", _data)


@workspace_required("members.view")
async def members_page(request: Request, context: WorkspaceContext) -> Response:
    return await PAGE.show(request, context)


@workspace_required("members.invite")
async def invite_members(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {"emails": form.get("emails", ""), "role": form.get("role", "member")}
    try:
        count = await invitations.send_invitations(request, context, form)
    except MemberError as refused:
        status = 429 if isinstance(refused, TooManyRequests) else 422
        return await PAGE.refuse(request, context, str(refused), field="emails", values=values, status_code=status)
    return PAGE.back(request, context, invitations.sent_message(count))


@workspace_required("members.invite")
async def revoke(request: Request, context: WorkspaceContext) -> Response:
    try:
        invitation = await actions.revoke_invitation(
            db_of(request), context, ip=client_ip(request), invitation_id=request.path_params["invitation_id"]
        )
    except MemberError as refused:
        return await PAGE.refuse(request, context, str(refused))
    return PAGE.back(request, context, f"Invitation to {invitation.email} withdrawn.")


@workspace_required("members.manage")
async def set_role(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        member = await actions.change_role(
            db_of(request),
            context,
            ip=client_ip(request),
            target_id=request.path_params["user_id"],
            role=form.get("role", ""),
        )
    except MemberError as refused:
        return await PAGE.refuse(request, context, str(refused))
    return PAGE.back(request, context, f"{member.email} is now {member.role}.")


@workspace_required("members.manage")
async def remove(request: Request, context: WorkspaceContext) -> Response:
    try:
        member = await actions.remove_member(
            db_of(request), context, ip=client_ip(request), target_id=request.path_params["user_id"]
        )
    except MemberError as refused:
        return await PAGE.refuse(request, context, str(refused))
    return PAGE.back(request, context, f"{member.email} was removed from the workspace.")


@workspace_required("workspace.view")
async def leave_workspace(request: Request, context: WorkspaceContext) -> Response:
    try:
        await actions.leave(db_of(request), context, ip=client_ip(request))
    except MemberError as refused:
        return workspace_pages.SETTINGS_PAGE.back(request, context, str(refused), "error")
    return redirect_with_flash(request, "/workspaces", f"You left {context.workspace.name}.")


routes: list[BaseRoute] = [
    Route("/w/{slug}/members", members_page, methods=["GET"]),
    Route("/w/{slug}/members/invite", invite_members, methods=["POST"]),
    Route("/w/{slug}/invitations/{invitation_id}/revoke", revoke, methods=["POST"]),
    Route("/w/{slug}/members/{user_id}/role", set_role, methods=["POST"]),
    Route("/w/{slug}/members/{user_id}/remove", remove, methods=["POST"]),
    Route("/w/{slug}/leave", leave_workspace, methods=["POST"]),
    *invitations.routes,
    *audit_routes.routes,
]
