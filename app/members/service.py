"""Membership: reading members, roles, removal, leaving, ownership (invitations: ``app.members.invitations``).
No HTTP here; callers own the transaction, and each change records its audit entry in it.

Every function that changes memberships first locks the workspace row (``FOR UPDATE``): it is the one mutex
for a workspace's membership, so two admins acting at once (or an owner transferring while an admin changes
roles) are serialised, and the checks below ("the owner cannot be demoted", "one owner") read current rows.
The actor's role is re-read under that lock too, so a role changed a moment ago is the one that counts.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record
from app.auth.models import User
from app.auth.sessions import now
from app.db.direct import DirectConnection, DirectQuery, fetch
from app.errors import NotFound, Refused
from app.tenants.models import Invitation, Membership, Workspace
from app.tenants.permissions import Role, assignable_roles, can


class MemberError(Refused):
    """A membership change that cannot be done as asked; the message says why, in words for the user."""


class MemberNotFound(MemberError, NotFound):
    """The person named is not a member of this workspace (the API answers 404; the members page shows it)."""


class InvitationNotFound(MemberError, NotFound):
    """The invitation named does not exist in this workspace."""


@dataclass(frozen=True)
class Member:
    user_id: uuid.UUID
    email: str
    display_name: str
    role: str
    joined_at: datetime

    @property
    def label(self) -> str:
        return self.display_name or self.email


# --- reading -------------------------------------------------------------------------------------------------


# The columns a Member shows, not the entities (the API's hottest read skips ORM loading); built once, and sent
# by asyncpg itself when the caller has a direct connection (``app.db.direct``).
_MEMBERS = DirectQuery(
    select(User.id, User.email, User.display_name, Membership.role, Membership.created_at)
    .join_from(Membership, User, User.id == Membership.user_id)
    .where(Membership.workspace_id == bindparam("workspace_id"))
    .order_by(Membership.created_at, User.email)
)


async def list_members(db: AsyncSession | DirectConnection, workspace_id: str) -> list[Member]:
    rows = await fetch(db, _MEMBERS, {"workspace_id": workspace_id})
    order = {role.value: index for index, role in enumerate(Role)}
    members = [Member(user_id, email, name, role, joined) for user_id, email, name, role, joined in rows]
    return sorted(members, key=lambda member: (order.get(member.role, 99), member.label.lower()))


async def pending_invitations(db: AsyncSession, workspace_id: str) -> list[Invitation]:
    rows = await db.scalars(
        select(Invitation)
        .where(
            Invitation.workspace_id == workspace_id,
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
            Invitation.expires_at > now(),
        )
        .order_by(Invitation.created_at.desc())
    )
    return list(rows)


async def member_labels(db: AsyncSession, user_ids: set[str]) -> dict[str, str]:
    """Labels like ``Name <e-mail>`` (or the e-mail alone) by user id; unknown or malformed ids are skipped."""
    ids = [parsed for parsed in map(uuid_or_none, user_ids) if parsed is not None]
    if not ids:
        return {}
    rows = await db.execute(select(User.id, User.email, User.display_name).where(User.id.in_(ids)))
    return {str(uid): f"{name} <{email}>" if name else email for uid, email, name in rows}


# --- shared checks -------------------------------------------------------------------------------------------


def uuid_or_none(raw: uuid.UUID | str) -> uuid.UUID | None:
    try:
        return raw if isinstance(raw, uuid.UUID) else uuid.UUID(raw)
    except ValueError:
        return None


async def lock_workspace(db: AsyncSession, workspace_id: str) -> Workspace:
    workspace = await db.get(Workspace, workspace_id, with_for_update=True, populate_existing=True)
    if workspace is None:
        raise MemberError("This workspace no longer exists.")
    return workspace


async def membership_of(db: AsyncSession, workspace_id: str, user_id: uuid.UUID) -> Membership | None:
    return await db.scalar(
        select(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        .execution_options(populate_existing=True)
    )


def person_of(actor: Actor) -> uuid.UUID:
    """The acting person's user id; only people change memberships (an agent or the system has no role)."""
    if actor.user_id is None:
        raise MemberError("Only a member of this workspace can do this.")
    return actor.user_id


async def acting_member(db: AsyncSession, workspace_id: str, actor_id: uuid.UUID, permission: str) -> Membership:
    """The actor's current membership, re-read under the workspace lock; refused without ``permission``."""
    membership = await membership_of(db, workspace_id, actor_id)
    if membership is None:
        raise MemberError("You are no longer a member of this workspace.")
    if not can(membership.role, permission):
        raise MemberError("Your role in this workspace does not allow this.")
    return membership


async def _target(db: AsyncSession, workspace_id: str, user_id: uuid.UUID | str) -> Membership:
    """A member of *this* workspace; anyone else (another workspace's member, a stranger) is refused alike."""
    parsed = uuid_or_none(user_id)
    membership = None if parsed is None else await membership_of(db, workspace_id, parsed)
    if membership is None:
        raise MemberNotFound("That person is not a member of this workspace.")
    return membership


def parse_role(raw: str, actor_role: str) -> Role:
    """A role the actor may hand out (owners and admins: admin, member or viewer; never owner)."""
    allowed = assignable_roles(actor_role)
    value = raw.strip().lower()
    if value == Role.OWNER:
        raise MemberError("There is one owner per workspace; use “Transfer ownership” in the settings instead.")
    for role in allowed:
        if role.value == value:
            return role
    if not allowed:
        raise MemberError("Your role in this workspace does not allow this.")
    raise MemberError("Choose a role: " + ", ".join(role.value for role in allowed) + ".")


# --- members -------------------------------------------------------------------------------------------------


async def member_view(db: AsyncSession, membership: Membership) -> Member:
    """The member as the lists show them; a user row gone meanwhile shows its id for an address."""
    user = await db.get(User, membership.user_id)
    email, name = (user.email, user.display_name) if user is not None else (str(membership.user_id), "")
    return Member(membership.user_id, email, name, membership.role, membership.created_at)


async def change_role(
    db: AsyncSession, *, workspace_id: str, actor: Actor, target_id: uuid.UUID | str, role: str
) -> tuple[Member, str]:
    """Give a member another role; returns them with it, and their previous role."""
    await lock_workspace(db, workspace_id)
    acting = await acting_member(db, workspace_id, person_of(actor), "members.manage")
    target = await _target(db, workspace_id, target_id)
    if target.role == Role.OWNER:
        if acting.user_id == target.user_id:
            raise MemberError("A workspace needs its owner: transfer ownership to another member first.")
        raise MemberError("Only the owner can change the owner's role, by transferring ownership.")
    if target.user_id == acting.user_id:
        raise MemberError("You cannot change your own role; ask the owner or another admin.")
    chosen = parse_role(role, acting.role)
    previous = target.role
    if previous == chosen:
        raise MemberError(f"They already are {chosen.value}.")
    target.role = chosen.value
    await db.flush()
    member = await member_view(db, target)
    details = {
        "member_id": str(member.user_id),
        "member": member.display_name or member.email,
        "email": member.email,
        "from": previous,
        "to": member.role,
    }
    record(db, workspace_id, "member.role_changed", actor, details)
    return member, previous


async def remove_member(db: AsyncSession, *, workspace_id: str, actor: Actor, target_id: uuid.UUID | str) -> Member:
    """End someone's membership (their very next request is refused: guards re-read it); returns who they were."""
    await lock_workspace(db, workspace_id)
    acting = await acting_member(db, workspace_id, person_of(actor), "members.manage")
    target = await _target(db, workspace_id, target_id)
    if target.user_id == acting.user_id:
        raise MemberError("To remove yourself, use “Leave workspace”.")
    if target.role == Role.OWNER:
        raise MemberError("The owner cannot be removed; they can transfer ownership and then leave.")
    member = await member_view(db, target)
    await db.delete(target)
    await db.flush()
    details = {
        "member_id": str(member.user_id),
        "member": member.display_name or member.email,
        "email": member.email,
        "role": member.role,
    }
    record(db, workspace_id, "member.removed", actor, details)
    return member


async def leave(db: AsyncSession, *, workspace_id: str, actor: Actor) -> Membership:
    """The acting person leaves the workspace (not its owner)."""
    await lock_workspace(db, workspace_id)
    membership = await acting_member(db, workspace_id, person_of(actor), "workspace.view")
    if membership.role == Role.OWNER:
        raise MemberError(
            "You own this workspace. Transfer ownership to another member before leaving, or delete the workspace."
        )
    await db.delete(membership)
    await db.flush()
    record(db, workspace_id, "member.left", actor, {"role": membership.role})
    return membership


async def transfer_ownership(
    db: AsyncSession, *, workspace_id: str, actor: Actor, target_id: uuid.UUID | str
) -> tuple[Member, str]:
    """Make another member the owner; the previous owner becomes an admin. Returns (new owner, their old role)."""
    await lock_workspace(db, workspace_id)
    acting = await acting_member(db, workspace_id, person_of(actor), "ownership.transfer")
    target = await _target(db, workspace_id, target_id)
    if target.user_id == acting.user_id:
        raise MemberError("You already own this workspace; choose another member.")
    previous = target.role
    target.role = Role.OWNER.value
    acting.role = Role.ADMIN.value
    await db.flush()
    owner = await member_view(db, target)
    former = await db.get(User, acting.user_id)
    details = {
        "from": former.email if former is not None else str(acting.user_id),
        "to": owner.email,
        "new_owner": owner.display_name or owner.email,
        "new_owner_id": str(owner.user_id),
        "new_owner_previous_role": previous,
    }
    record(db, workspace_id, "ownership.transferred", actor, details)
    return owner, previous
