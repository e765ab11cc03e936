"""``/workspaces/{slug}/invitations``: pending invitations, inviting, withdrawing (twin of the members page).

Inviting goes through the page's own code path (``app.members.invitations.send_invitations``): the same
hourly allowance, validation, mails and audit entries; withdrawing runs the page's action
(``app.members.actions.revoke_invitation``).
"""

from __future__ import annotations

from pydantic import BaseModel

from app.api.errors import ApiError
from app.api.members import refused
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, newest_first, paginate
from app.api.principal import Scope
from app.api.schemas import InvitationCreate, InvitationList, InvitationOut, InvitationsCreated
from app.members import actions
from app.members.invitations import send_invitations
from app.members.service import InvitationNotFound, MemberError, parse_addresses, pending_invitations
from app.members.web import TooManyRequests
from app.tenants.models import Invitation
from app.web.forms import client_ip
from app.web.state import db_of


def invitation_out(invitation: Invitation) -> InvitationOut:
    return InvitationOut(
        id=invitation.id,
        email=invitation.email,
        role=invitation.role,
        invited_by=invitation.invited_by,
        created_at=invitation.created_at,
        expires_at=invitation.expires_at,
    )


@api_route(
    "GET",
    "/workspaces/{slug}/invitations",
    scope=Scope.READ,
    permission="members.invite",
    query=PageQuery,
    response=InvitationList,
    summary="List pending invitations",
    tags=["Invitations"],
)
async def list_invitations(call: Call) -> BaseModel:
    """Invitations not yet accepted, withdrawn or expired, newest first."""
    async with db_of(call.request).public_session() as session:
        pending = await pending_invitations(session, call.workspace.workspace.id)
    page = paginate(pending, lambda i: (newest_first(i.created_at), str(i.id)), (int, str), call.query)
    return envelope(InvitationList, page, invitation_out)


@api_route(
    "POST",
    "/workspaces/{slug}/invitations",
    scope=Scope.ADMIN,
    permission="members.invite",
    actors="user",
    body=InvitationCreate,
    response=InvitationsCreated,
    status=201,
    summary="Invite people",
    tags=["Invitations"],
)
async def create_invitations(call: Call) -> InvitationsCreated:
    """Invite up to 20 addresses at once, all or none; each gets an e-mail with a link valid for 7 days.
    Inviting someone again replaces their pending invitation. At most 50 invitations per person and hour."""
    context = call.workspace.context
    body: InvitationCreate = call.body
    form = {"emails": ", ".join(body.emails), "role": body.role.value}
    try:
        await send_invitations(call.request, context, form)
        invited = set(parse_addresses(form["emails"]))
    except TooManyRequests as limited:
        raise ApiError(429, str(limited)) from None
    except MemberError as error:
        raise refused(error) from None
    async with db_of(call.request).public_session() as session:
        pending = await pending_invitations(session, context.workspace.id)
    return InvitationsCreated(data=[invitation_out(i) for i in pending if i.email in invited])


@api_route(
    "DELETE",
    "/workspaces/{slug}/invitations/{invitation_id}",
    scope=Scope.ADMIN,
    permission="members.invite",
    actors="user",
    summary="Withdraw an invitation",
    tags=["Invitations"],
)
async def revoke_workspace_invitation(call: Call) -> None:
    """The link stops working at once. Accepted invitations cannot be withdrawn (remove the member)."""
    try:
        await actions.revoke_invitation(
            db_of(call.request),
            call.workspace.context,
            ip=client_ip(call.request),
            invitation_id=call.params["invitation_id"],
        )
    except InvitationNotFound:
        raise ApiError(404, "No such invitation in this workspace.") from None
    except MemberError as error:
        raise refused(error) from None
