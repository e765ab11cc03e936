"""Which workspace a request is about, and what the signed-in user may do in it.

A workspace is named in the URL by its slug (``/w/<slug>/...``). Someone who is not a member gets 404, the
same answer as for a workspace that does not exist, so its existence does not leak (ASVS 8.4.1).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.tenants.models import Membership, Workspace
from app.tenants.permissions import can


@dataclass
class WorkspaceContext:
    workspace: Workspace
    membership: Membership
    user: User

    @property
    def role(self) -> str:
        return self.membership.role

    def can(self, permission: str) -> bool:
        return can(self.membership.role, permission)


async def resolve_workspace(db: AsyncSession, user: User, slug: str) -> WorkspaceContext | None:
    row = (
        await db.execute(
            select(Workspace, Membership)
            .join(Membership, Membership.workspace_id == Workspace.id)
            .where(Workspace.slug == slug, Membership.user_id == user.id)
        )
    ).first()
    if row is None:
        return None
    workspace, membership = row
    return WorkspaceContext(workspace=workspace, membership=membership, user=user)


async def workspaces_of(db: AsyncSession, user: User) -> list[tuple[Workspace, str]]:
    rows = await db.execute(
        select(Workspace, Membership.role)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .where(Membership.user_id == user.id)
        .order_by(Workspace.name)
    )
    return [(workspace, role) for workspace, role in rows]
