"""``/workspaces/{slug}/members``: the member list, role changes and removal (twin of /w/{slug}/members).

The rules live in ``app.members.service`` and are re-checked there under the workspace lock; the audit
entries are the ones the members page writes (``app.members.routes``), with the same details.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.errors import ApiError
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, paginate
from app.api.principal import Scope
from app.api.schemas import MemberList, MemberOut, MemberPatch
from app.auth.models import User
from app.db import Database
from app.members.service import Member, MemberError, change_role, list_members, remove_member
from app.members.web import audit
from app.tenants.models import Membership
from app.tenants.permissions import ROLE_ORDER

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
    return ApiError(422, str(error), code="invalid_request")


async def existing_member(db: Database, workspace_id: str, user_id: uuid.UUID) -> None:
    """404 unless ``user_id`` is a member of this workspace (a member of another one is nobody here)."""
    async with db.public_session() as session:
        found = await session.scalar(
            select(Membership.user_id).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        )
    if found is None:
        raise ApiError(404, "That person is not a member of this workspace.")


async def _email(session: AsyncSession, user_id: uuid.UUID) -> str:
    user = await session.get(User, user_id)
    return user.email if user is not None else str(user_id)


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
    db: Database = call.request.app.state.db
    async with db.public_session() as session:
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
    context = call.workspace.context
    workspace_id = context.workspace.id
    db: Database = call.request.app.state.db
    await existing_member(db, workspace_id, call.params["user_id"])
    patch: MemberPatch = call.body
    try:
        async with db.public_session() as session:
            membership, previous = await change_role(
                session,
                workspace_id=workspace_id,
                actor_id=context.user.id,
                target_id=call.params["user_id"],
                role=patch.role.value,
            )
            user = await session.get(User, membership.user_id)
            email = user.email if user is not None else str(membership.user_id)
            out = MemberOut(
                user_id=membership.user_id,
                email=email,
                display_name=user.display_name if user is not None else "",
                role=membership.role,
                joined_at=membership.created_at,
            )
    except MemberError as error:
        raise refused(error) from None
    details = {"member_id": str(membership.user_id), "email": email, "from": previous, "to": membership.role}
    await audit(call.request, workspace_id, "member.role_changed", context.user.id, details)
    return out


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
    context = call.workspace.context
    workspace_id = context.workspace.id
    db: Database = call.request.app.state.db
    await existing_member(db, workspace_id, call.params["user_id"])
    try:
        async with db.public_session() as session:
            membership = await remove_member(
                session, workspace_id=workspace_id, actor_id=context.user.id, target_id=call.params["user_id"]
            )
            email = await _email(session, membership.user_id)
    except MemberError as error:
        raise refused(error) from None
    details = {"member_id": str(membership.user_id), "email": email, "role": membership.role}
    await audit(call.request, workspace_id, "member.removed", context.user.id, details)
