"""The members domain's item on a new workspace's "next steps" checklist (``app.onboarding.checklist``)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.onboarding.checklist import Tables, register
from app.tenants.context import MemberOf
from app.tenants.models import Invitation, Membership, Workspace


async def team_invited(session: AsyncSession, workspace: Workspace) -> bool:
    """Someone besides the owner is a member, or was invited."""
    others = await session.scalar(
        select(Membership.user_id).where(Membership.workspace_id == workspace.id, Membership.role != "owner").limit(1)
    )
    if others is not None:
        return True
    return (
        await session.scalar(select(Invitation.id).where(Invitation.workspace_id == workspace.id).limit(1)) is not None
    )


def team_known(member: MemberOf) -> bool:
    """:func:`team_invited`, as the request's session loaded it (``app.tenants.context.memberships_of``)."""
    return member.has_team


register("invite", team_invited, tables=Tables.PLATFORM, known=team_known)
