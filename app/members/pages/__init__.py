"""The members page: who is in the workspace, invitations, roles, removal and leaving.

Also the one list of this domain's routes (``app.routes`` includes it): the invitation link and the onboarding
step are in :mod:`app.members.pages.invitations`.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.errors import ServiceError
from app.mail.jobs import deliver_mail
from app.members import checklist as _checklist  # noqa: F401  (registers the "invite your team" item)
from app.members import service
from app.members.invitations import (
    MAX_INVITES_AT_ONCE,
    charge_invitations,
    refund_invitations,
    resend_invitation,
    revoke_invitation,
    shareable_link,
)
from app.members.pages import invitations
from app.members.service import list_members, pending_invitations
from app.tenants.context import WorkspaceContext
from app.tenants.permissions import PERMISSIONS, ROLE_DESCRIPTIONS, ROLE_ORDER, assignable_roles
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.idempotency import submit_once
from app.web.pages import WorkspacePage, redirect_with_flash
from app.web.state import changes, db_of, limiter_of, settings_of


def permission_table() -> dict[str, Any]:
    """The permission table of app.tenants.permissions, shaped for the members page."""
    rows = [
        {"name": name, "description": description, "granted": [role in roles for role in ROLE_ORDER]}
        for name, (description, roles) in PERMISSIONS.items()
    ]
    roles = [{"name": role.value, "description": ROLE_DESCRIPTIONS[role]} for role in ROLE_ORDER]
    return {"rows": rows, "roles": roles}


async def _data(request: Request, context: WorkspaceContext, values: dict[str, str] | None) -> dict[str, Any]:
    async with db_of(request).public_session() as db:
        members = await list_members(db, context.workspace.id)
        pending = await pending_invitations(db, context.workspace.id) if context.can("members.invite") else []
    settings = settings_of(request)
    return {
        "members": members,
        "invitations": [(invitation, shareable_link(settings, invitation)) for invitation in pending],
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

    async def act() -> Response:
        try:
            count = await invitations.send(request, context, values["emails"], values["role"])
        except ServiceError as refused:
            return await PAGE.refuse(request, context, refused, field="emails", values=values)
        return PAGE.back(request, context, invitations.sent_message(count))

    return await submit_once(request, form, scope=f"invite:{context.workspace.id}:{context.user.id}", act=act)


@workspace_required("members.invite")
async def revoke(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with changes(request) as session:
            invitation = await revoke_invitation(
                session,
                workspace_id=context.workspace.id,
                actor=context.actor,
                invitation_id=request.path_params["invitation_id"],
            )
    except ServiceError as refused:
        return await PAGE.refuse(request, context, refused)
    return PAGE.back(request, context, f"Invitation to {invitation.email} withdrawn.")


@workspace_required("members.invite")
async def resend(request: Request, context: WorkspaceContext) -> Response:
    try:
        await charge_invitations(limiter_of(request), context.user.id, 1)
    except ServiceError as refused:
        return await PAGE.refuse(request, context, refused)
    try:
        async with changes(request) as session:
            invitation = await resend_invitation(
                session,
                settings_of(request),
                workspace_id=context.workspace.id,
                actor=context.actor,
                invitation_id=request.path_params["invitation_id"],
            )
    except ServiceError as refused:
        await refund_invitations(limiter_of(request), context.user.id, 1)
        return await PAGE.refuse(request, context, refused)
    await request.app.state.jobs.enqueue(deliver_mail)
    return PAGE.back(request, context, f"Invitation sent to {invitation.email} again. It works for another week.")


@workspace_required("members.manage")
async def set_role(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    try:
        async with changes(request) as session:
            member, _ = await service.change_role(
                session,
                workspace_id=context.workspace.id,
                actor=context.actor,
                target_id=request.path_params["user_id"],
                role=form.get("role", ""),
            )
    except ServiceError as refused:
        return await PAGE.refuse(request, context, refused)
    return PAGE.back(request, context, f"{member.display_name or member.email} is now {member.role}.")


@workspace_required("members.manage")
async def remove(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with changes(request) as session:
            member = await service.remove_member(
                session,
                workspace_id=context.workspace.id,
                actor=context.actor,
                target_id=request.path_params["user_id"],
            )
    except ServiceError as refused:
        return await PAGE.refuse(request, context, refused)
    return PAGE.back(request, context, f"{member.email} was removed from the workspace.")


@workspace_required("workspace.view")
async def leave_workspace(request: Request, context: WorkspaceContext) -> Response:
    try:
        async with changes(request) as session:
            await service.leave(session, workspace_id=context.workspace.id, actor=context.actor)
    except ServiceError as refused:
        return redirect_with_flash(request, f"/w/{context.workspace.slug}/settings", refused.message, "error")
    return redirect_with_flash(request, "/workspaces", f"You left {context.workspace.name}.")


routes: list[BaseRoute] = [
    Route("/w/{slug}/members", members_page, methods=["GET"]),
    Route("/w/{slug}/members/invite", invite_members, methods=["POST"]),
    Route("/w/{slug}/invitations/{invitation_id}/revoke", revoke, methods=["POST"]),
    Route("/w/{slug}/invitations/{invitation_id}/resend", resend, methods=["POST"]),
    Route("/w/{slug}/members/{user_id}/role", set_role, methods=["POST"]),
    Route("/w/{slug}/members/{user_id}/remove", remove, methods=["POST"]),
    Route("/w/{slug}/leave", leave_workspace, methods=["POST"]),
    *invitations.routes,
]
