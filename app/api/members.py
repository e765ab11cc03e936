"""``/workspaces/{slug}/members``: the member list, role changes and removal (twin of /w/{slug}/members).

The rules live in ``app.members.service`` and are re-checked there under the workspace lock; each change
runs the members page's own action (``app.members.actions``), so the audit entries are the same too.
"""

from __future__ import annotations

from pydantic import BaseModel

from app.api.errors import ApiError
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, paginate
from app.api.principal import Scope
from app.api.schemas import MemberList, MemberOut, MemberPatch
from app.members import actions
from app.members.service import Member, MemberError, MemberNotFound, list_members
from app.tenants.permissions import ROLE_ORDER
from app.web.forms import client_ip
from app.web.state import db_of

_ROLE_RANK = {role.value: index for index, role in enumerate(ROLE_ORDER)}


def member_out(member: Member) -> MemberOut:
    return MemberOut(
        user_id=member.user_id,
        email=member.email,
        display_name=member.display_name,
        role=member.role,
        joined_at=member.joined_at,
    )


def refused(error: MemberError) -> ApiError:
    """422 for a refusal; 404 for someone who is not a member here (a member of another workspace is nobody)."""
    if isinstance(error, MemberNotFound):
        return ApiError(404, str(error))
    return ApiError(422, str(error), code="invalid_request")


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
    async with db_of(call.request).public_session() as session:
        members = await list_members(session, call.workspace.workspace.id)
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
    try:
        member = await actions.change_role(
            db_of(call.request),
            call.workspace.context,
            ip=client_ip(call.request),
            target_id=call.params["user_id"],
            role=patch.role.value,
        )
    except MemberError as error:
        raise refused(error) from None
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
    try:
        await actions.remove_member(
            db_of(call.request),
            call.workspace.context,
            ip=client_ip(call.request),
            target_id=call.params["user_id"],
        )
    except MemberError as error:
        raise refused(error) from None
