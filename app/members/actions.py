"""Membership and workspace-settings actions as the pages and the JSON API both run them.

Each action is one unit of work for the change (the rules are ``app.members.service`` and
``app.workspaces.service``; a refusal is their ``MemberError``), and then its audit entry.
``app.audit.service.record`` opens its own unit of work in the workspace's schema, so the entry is written
only once the change has committed: the log never tells of a change that was rolled back.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.service import record
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.members import service
from app.members.service import InvitationView, Member
from app.tenants.context import WorkspaceContext
from app.tenants.models import Invitation, Membership, Workspace
from app.workspaces.service import delete_with_confirmation, update_settings

# The audit log goes with a deleted workspace's schema; the operator's log keeps the trace.
logger = logging.getLogger("marid.workspaces")


async def _audit(db: Database, context: WorkspaceContext, ip: str, action: str, details: dict[str, Any]) -> None:
    await record(db, context.workspace.id, action, actor_id=context.user.id, ip=ip, details=details)


async def _member(session: AsyncSession, membership: Membership) -> Member:
    """The member as the lists show them; a user row gone meanwhile shows its id for an address."""
    user = await session.get(User, membership.user_id)
    email, name = (user.email, user.display_name) if user is not None else (str(membership.user_id), "")
    return Member(membership.user_id, email, name, membership.role, membership.created_at)


def _invitation_details(invitation: Invitation) -> dict[str, Any]:
    return {"invitation_id": str(invitation.id), "email": invitation.email, "role": invitation.role}


# --- invitations ---------------------------------------------------------------------------------------------


async def invite(
    db: Database, settings: Settings, context: WorkspaceContext, *, ip: str, addresses: str, role: str
) -> list[Invitation]:
    """Invite each address (all or none) and queue the mails; one ``member.invited`` entry per invitation."""
    async with db.public_session() as session:
        created = await service.invite(
            session, settings, workspace_id=context.workspace.id, actor=context.user, addresses=addresses, role=role
        )
    for invitation in created:
        await _audit(db, context, ip, "member.invited", _invitation_details(invitation))
    return created


async def revoke_invitation(
    db: Database, context: WorkspaceContext, *, ip: str, invitation_id: uuid.UUID | str
) -> Invitation:
    """Withdraw a pending invitation; ``InvitationNotFound`` if this workspace has no such invitation."""
    async with db.public_session() as session:
        invitation = await service.revoke_invitation(
            session, workspace_id=context.workspace.id, actor_id=context.user.id, invitation_id=invitation_id
        )
    await _audit(db, context, ip, "invitation.revoked", _invitation_details(invitation))
    return invitation


async def accept_invitation(
    db: Database, user: User, *, ip: str, token: str
) -> tuple[InvitationView, Membership, bool]:
    """Join the invitation's workspace (see ``service.accept``); returns (invitation, membership, whether new)."""
    async with db.public_session() as session:
        view, membership, created = await service.accept(session, token=token, user=user)
    details = _invitation_details(view.invitation)
    if not created:
        details["note"] = f"was already a member (as {membership.role}); role unchanged"
    await record(db, view.workspace.id, "invitation.accepted", actor_id=user.id, ip=ip, details=details)
    return view, membership, created


# --- members -------------------------------------------------------------------------------------------------


async def change_role(
    db: Database, context: WorkspaceContext, *, ip: str, target_id: uuid.UUID | str, role: str
) -> Member:
    """Give a member another role; returns them with it. ``MemberNotFound`` if they are not a member here."""
    async with db.public_session() as session:
        membership, previous = await service.change_role(
            session, workspace_id=context.workspace.id, actor_id=context.user.id, target_id=target_id, role=role
        )
        member = await _member(session, membership)
    details = {"member_id": str(member.user_id), "email": member.email, "from": previous, "to": member.role}
    await _audit(db, context, ip, "member.role_changed", details)
    return member


async def remove_member(db: Database, context: WorkspaceContext, *, ip: str, target_id: uuid.UUID | str) -> Member:
    """End someone's membership; returns who they were. ``MemberNotFound`` if they are not a member here."""
    async with db.public_session() as session:
        membership = await service.remove_member(
            session, workspace_id=context.workspace.id, actor_id=context.user.id, target_id=target_id
        )
        member = await _member(session, membership)
    details = {"member_id": str(member.user_id), "email": member.email, "role": member.role}
    await _audit(db, context, ip, "member.removed", details)
    return member


async def leave(db: Database, context: WorkspaceContext, *, ip: str) -> None:
    """The acting user leaves the workspace (not its owner)."""
    async with db.public_session() as session:
        membership = await service.leave(session, workspace_id=context.workspace.id, user_id=context.user.id)
    await _audit(db, context, ip, "member.left", {"role": membership.role})


async def transfer_ownership(db: Database, context: WorkspaceContext, *, ip: str, target_id: uuid.UUID | str) -> Member:
    """Make another member the owner (the acting owner becomes an admin); returns the new owner."""
    async with db.public_session() as session:
        membership, previous = await service.transfer_ownership(
            session, workspace_id=context.workspace.id, actor_id=context.user.id, target_id=target_id
        )
        owner = await _member(session, membership)
    details = {
        "from": context.user.email,
        "to": owner.email,
        "new_owner_id": str(owner.user_id),
        "new_owner_previous_role": previous,
    }
    await _audit(db, context, ip, "ownership.transferred", details)
    return owner


# --- workspace settings --------------------------------------------------------------------------------------


async def save_settings(
    db: Database, context: WorkspaceContext, *, ip: str, name: str, require_2fa: str | None
) -> tuple[Workspace, dict[str, dict[str, Any]]]:
    """Apply the settings form (see ``update_settings``); returns the workspace as saved and what changed."""
    async with db.public_session() as session:
        changes = await update_settings(
            session, workspace_id=context.workspace.id, actor=context.user, name=name, require_2fa=require_2fa
        )
        workspace = await session.get(Workspace, context.workspace.id, populate_existing=True)
    assert workspace is not None, "update_settings locked it in this transaction"
    if "name" in changes:
        await _audit(db, context, ip, "settings.changed", {"name": changes["name"]})
    if "require_2fa" in changes:
        await _audit(db, context, ip, "workspace.2fa_required_changed", changes["require_2fa"])
    return workspace, changes


async def delete_workspace(db: Database, context: WorkspaceContext, *, ip: str, confirmation: str) -> Workspace:
    """Delete the workspace if ``confirmation`` is its name, typed exactly; returns what it was."""
    async with db.public_session() as session:
        workspace = await delete_with_confirmation(
            session, workspace_id=context.workspace.id, actor_id=context.user.id, confirmation=confirmation
        )
    logger.info("workspace %s (%s) deleted by user %s from %s", workspace.id, workspace.slug, context.user.id, ip)
    return workspace
