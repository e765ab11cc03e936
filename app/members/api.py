"""JSON twins of the members page: members (list, change role, remove) and invitations (list, send, revoke),
calling the same member services as the pages. Refusals are the services' own (``app.errors``), mapped by the
operation wrapper."""

from __future__ import annotations

from pydantic import BaseModel

from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, newest_first, paginate
from app.api.principal import Scope
from app.api.schemas import (
    InvitationCreate,
    InvitationList,
    InvitationOut,
    InvitationsCreated,
    MemberList,
    MemberOut,
    MemberPatch,
)
from app.mail.jobs import deliver_mail
from app.members import service
from app.members.invitations import revoke_invitation, send_invitations
from app.members.service import Member, list_members, pending_invitations
from app.tenants.models import Invitation
from app.tenants.permissions import ROLE_ORDER
from app.web.state import changes, db_of, limiter_of, settings_of

_ROLE_RANK = {role.value: index for index, role in enumerate(ROLE_ORDER)}


def member_out(member: Member) -> MemberOut:
    return MemberOut(
        user_id=member.user_id,
        email=member.email,
        display_name=member.display_name,
        role=member.role,
        joined_at=member.joined_at,
    )


@api_route(
    "GET",
    "/workspaces/{slug}/members",
    scope=Scope.READ,
    permission="members.view",
    query=PageQuery,
    response=MemberList,
    summary="List members",
    tags=["Members"],
)
async def list_workspace_members(call: Call) -> BaseModel:
    """Members by role (owner first), then by name."""
    async with db_of(call.request).direct() as connection:  # one statement: no transaction round trips
        members = await list_members(connection, call.workspace.workspace.id)
    page = paginate(
        members,
        lambda m: (_ROLE_RANK.get(m.role, 99), m.label.lower(), str(m.user_id)),
        (int, str, str),
        call.query,
    )
    return envelope(MemberList, page, member_out)


@api_route(
    "PATCH",
    "/workspaces/{slug}/members/{user_id}",
    scope=Scope.ADMIN,
    permission="members.manage",
    actors="user",
    body=MemberPatch,
    response=MemberOut,
    summary="Change a member's role",
    tags=["Members"],
)
async def change_member_role(call: Call) -> MemberOut:
    """Give a member another role. Nobody changes their own role or the owner's (ownership moves by a
    transfer), and admins hand out at most admin."""
    patch: MemberPatch = call.body
    async with changes(call.request) as session:
        member, _ = await service.change_role(
            session,
            workspace_id=call.workspace.workspace.id,
            actor=call.person.actor,
            target_id=call.params["user_id"],
            role=patch.role.value,
        )
    return member_out(member)


@api_route(
    "DELETE",
    "/workspaces/{slug}/members/{user_id}",
    scope=Scope.ADMIN,
    permission="members.manage",
    actors="user",
    summary="Remove a member",
    tags=["Members"],
)
async def remove_workspace_member(call: Call) -> None:
    """End someone's membership; their next request to the workspace is refused. The owner cannot be
    removed, and you leave a workspace from its settings page rather than by removing yourself."""
    async with changes(call.request) as session:
        await service.remove_member(
            session, workspace_id=call.workspace.workspace.id, actor=call.person.actor, target_id=call.params["user_id"]
        )


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
    context = call.person
    body: InvitationCreate = call.body
    async with changes(call.request) as session:
        created = await send_invitations(
            session,
            settings_of(call.request),
            limiter_of(call.request),
            workspace_id=context.workspace.id,
            actor=context.actor,
            addresses=body.emails,
            role=body.role.value,
        )
    await call.request.app.state.jobs.enqueue(deliver_mail)
    ids = {invitation.id for invitation in created}
    async with db_of(call.request).public_session() as session:
        pending = await pending_invitations(session, context.workspace.id)
    return InvitationsCreated(data=[invitation_out(i) for i in pending if i.id in ids])


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
    async with changes(call.request) as session:
        await revoke_invitation(
            session,
            workspace_id=call.workspace.workspace.id,
            actor=call.person.actor,
            invitation_id=call.params["invitation_id"],
        )
