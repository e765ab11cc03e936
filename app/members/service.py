"""Membership: invitations, roles, removal, leaving, ownership. No HTTP here; callers own the transaction.

Every function that changes memberships first locks the workspace row (``FOR UPDATE``): it is the one mutex
for a workspace's membership, so two admins acting at once (or an owner transferring while an admin changes
roles) are serialised, and the checks below ("the owner cannot be demoted", "one owner") read current rows.
The actor's role is re-read under that lock too, so a role changed a moment ago is the one that counts.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.auth.service import email_problem, normalise_email
from app.auth.sessions import now
from app.config import Settings
from app.mail import messages
from app.mail.service import queue_mail
from app.security.single_line import strip_control_characters
from app.security.tokens import new_token, token_hash
from app.tenants.models import Invitation, Membership, Workspace
from app.tenants.permissions import Role, assignable_roles, can

INVITATION_DAYS = 7
MAX_INVITES_AT_ONCE = 20
_ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")
# A reference token from new_token(): urlsafe base64 of 32 bytes.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


class MemberError(ValueError):
    """A membership change that cannot be done as asked; the message says why, in words for the user."""


class MemberNotFound(MemberError):
    """The person named is not a member of this workspace (the API answers 404; pages show the message)."""


class InvitationNotFound(MemberError):
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


@dataclass(frozen=True)
class InvitationView:
    """An invitation as its link shows it: where to, from whom, as what, and whether it can still be used."""

    invitation: Invitation
    workspace: Workspace
    inviter: str
    problem: str | None


# --- reading -------------------------------------------------------------------------------------------------


async def list_members(db: AsyncSession, workspace_id: str) -> list[Member]:
    rows = await db.execute(
        select(Membership, User)
        .join(User, User.id == Membership.user_id)
        .where(Membership.workspace_id == workspace_id)
        .order_by(Membership.created_at, User.email)
    )
    order = {role.value: index for index, role in enumerate(Role)}
    members = [
        Member(user.id, user.email, user.display_name, membership.role, membership.created_at)
        for membership, user in rows
    ]
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
    ids = [parsed for parsed in map(_uuid_or_none, user_ids) if parsed is not None]
    if not ids:
        return {}
    rows = await db.execute(select(User.id, User.email, User.display_name).where(User.id.in_(ids)))
    return {str(uid): f"{name} <{email}>" if name else email for uid, email, name in rows}


# --- shared checks -------------------------------------------------------------------------------------------


def _uuid_or_none(raw: uuid.UUID | str) -> uuid.UUID | None:
    try:
        return raw if isinstance(raw, uuid.UUID) else uuid.UUID(raw)
    except ValueError:
        return None


async def lock_workspace(db: AsyncSession, workspace_id: str) -> Workspace:
    workspace = await db.get(Workspace, workspace_id, with_for_update=True, populate_existing=True)
    if workspace is None:
        raise MemberError("This workspace no longer exists.")
    return workspace


async def _membership(db: AsyncSession, workspace_id: str, user_id: uuid.UUID) -> Membership | None:
    return await db.scalar(
        select(Membership)
        .where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
        .execution_options(populate_existing=True)
    )


async def acting_member(db: AsyncSession, workspace_id: str, actor_id: uuid.UUID, permission: str) -> Membership:
    """The actor's current membership, re-read under the workspace lock; refused without ``permission``."""
    membership = await _membership(db, workspace_id, actor_id)
    if membership is None:
        raise MemberError("You are no longer a member of this workspace.")
    if not can(membership.role, permission):
        raise MemberError("Your role in this workspace does not allow this.")
    return membership


async def _target(db: AsyncSession, workspace_id: str, user_id: uuid.UUID | str) -> Membership:
    """A member of *this* workspace; anyone else (another workspace's member, a stranger) is refused alike."""
    parsed = _uuid_or_none(user_id)
    membership = None if parsed is None else await _membership(db, workspace_id, parsed)
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


def parse_addresses(raw: str) -> list[str]:
    """E-mail addresses separated by commas, semicolons, spaces or new lines; normalised, de-duplicated."""
    addresses: list[str] = []
    for part in _ADDRESS_SEPARATORS.split(raw):
        address = normalise_email(part)
        if address and address not in addresses:
            addresses.append(address)
    if not addresses:
        raise MemberError("Enter at least one e-mail address.")
    if len(addresses) > MAX_INVITES_AT_ONCE:
        raise MemberError(f"Invite at most {MAX_INVITES_AT_ONCE} people at once.")
    bad = [address for address in addresses if email_problem(address)]
    if bad:
        shown = ", ".join(strip_control_characters(address)[:60] for address in bad[:3])
        raise MemberError(f"Not a valid e-mail address: {shown}. Write addresses like name@example.com.")
    return addresses


# --- invitations ---------------------------------------------------------------------------------------------


def invitation_link(settings: Settings, token: str) -> str:
    return settings.base_url.rstrip("/") + f"/invite/{token}"


async def invite(
    db: AsyncSession,
    settings: Settings,
    *,
    workspace_id: str,
    actor: User,
    addresses: str,
    role: str,
) -> list[Invitation]:
    """Invite each address as ``role`` and queue the mails; a fresh invitation replaces a pending one.

    All or nothing: if any address is refused (invalid, already a member) no invitation is created.
    """
    workspace = await lock_workspace(db, workspace_id)
    membership = await acting_member(db, workspace_id, actor.id, "members.invite")
    chosen = parse_role(role, membership.role)
    emails = parse_addresses(addresses)
    existing = set(
        await db.scalars(
            select(func.lower(User.email))
            .join(Membership, Membership.user_id == User.id)
            .where(Membership.workspace_id == workspace_id, func.lower(User.email).in_(emails))
        )
    )
    if existing:
        raise MemberError("Already a member: " + ", ".join(sorted(existing)) + ".")
    moment = now()
    # Re-inviting someone replaces their pending invitation, so only the newest link works.
    pending = await db.scalars(
        select(Invitation).where(
            Invitation.workspace_id == workspace_id,
            func.lower(Invitation.email).in_(emails),
            Invitation.accepted_at.is_(None),
            Invitation.revoked_at.is_(None),
        )
    )
    for old in pending:
        old.revoked_at = moment
    inviter = actor.display_name or actor.email
    created: list[Invitation] = []
    for email in emails:
        token = new_token()
        invitation = Invitation(
            workspace_id=workspace_id,
            email=email,
            role=chosen.value,
            token_hash=token_hash(token),
            invited_by=actor.id,
            expires_at=moment + timedelta(days=INVITATION_DAYS),
        )
        db.add(invitation)
        subject, body = messages.invitation(
            workspace.name, inviter, chosen.value, invitation_link(settings, token), INVITATION_DAYS
        )
        await queue_mail(db, kind="invitation", to=email, subject=subject[:200], body=body, workspace_id=workspace_id)
        created.append(invitation)
    await db.flush()
    return created


async def revoke_invitation(
    db: AsyncSession, *, workspace_id: str, actor_id: uuid.UUID, invitation_id: uuid.UUID | str
) -> Invitation:
    await lock_workspace(db, workspace_id)
    await acting_member(db, workspace_id, actor_id, "members.invite")
    parsed = _uuid_or_none(invitation_id)
    statement = select(Invitation).where(Invitation.id == parsed, Invitation.workspace_id == workspace_id)
    invitation = None if parsed is None else await db.scalar(statement.with_for_update())
    if invitation is None:
        raise InvitationNotFound("That invitation does not exist.")
    if invitation.accepted_at is not None:
        raise MemberError("That invitation was already accepted; remove the member instead.")
    if invitation.revoked_at is not None:
        raise MemberError("That invitation was already revoked.")
    invitation.revoked_at = now()
    await db.flush()
    return invitation


def _problem(invitation: Invitation) -> str | None:
    if invitation.revoked_at is not None:
        return "This invitation was withdrawn. Ask for a new one."
    if invitation.accepted_at is not None:
        return "This invitation was already used."
    if invitation.expires_at <= now():
        return "This invitation has expired. Ask for a new one."
    return None


async def find_invitation(db: AsyncSession, token: str, *, lock: bool = False) -> InvitationView:
    """The invitation behind a link, with why it cannot be used (if so); MemberError for unknown links."""
    if not _TOKEN_SHAPE.match(token):
        raise MemberError("This invitation link is not valid.")
    statement = (
        select(Invitation, Workspace)
        .join(Workspace, Workspace.id == Invitation.workspace_id)
        .where(Invitation.token_hash == token_hash(token))
    )
    if lock:
        statement = statement.with_for_update(of=Invitation).execution_options(populate_existing=True)
    row = (await db.execute(statement)).first()
    if row is None:
        raise MemberError("This invitation link is not valid.")
    invitation, workspace = row
    inviter = None
    if invitation.invited_by is not None:
        inviter = await db.get(User, invitation.invited_by)
    label = (inviter.display_name or inviter.email) if inviter else "A former member"
    return InvitationView(invitation, workspace, label, _problem(invitation))


async def accept(db: AsyncSession, *, token: str, user: User) -> tuple[InvitationView, Membership, bool]:
    """Join the workspace as the invited role; returns (invitation, membership, whether it is new).

    The signed-in account's address must be the invited one: a forwarded link does not admit someone else.
    """
    # Lock order as everywhere else: the workspace first, then the invitation.
    unlocked = await find_invitation(db, token)
    await lock_workspace(db, unlocked.invitation.workspace_id)
    view = await find_invitation(db, token, lock=True)
    if view.problem:
        raise MemberError(view.problem)
    invitation = view.invitation
    if normalise_email(user.email) != normalise_email(invitation.email):
        raise MemberError(
            f"This invitation is for {invitation.email}, but you are signed in as {user.email}. "
            "Sign in with the invited address to accept it."
        )
    invitation.accepted_at = now()
    membership = await _membership(db, invitation.workspace_id, user.id)
    created = membership is None
    if membership is None:
        membership = Membership(workspace_id=invitation.workspace_id, user_id=user.id, role=invitation.role)
        db.add(membership)
    await db.flush()
    return view, membership, created


# --- members -------------------------------------------------------------------------------------------------


async def change_role(
    db: AsyncSession, *, workspace_id: str, actor_id: uuid.UUID, target_id: uuid.UUID | str, role: str
) -> tuple[Membership, str]:
    """Give a member another role; returns the membership and its previous role."""
    await lock_workspace(db, workspace_id)
    actor = await acting_member(db, workspace_id, actor_id, "members.manage")
    target = await _target(db, workspace_id, target_id)
    if target.role == Role.OWNER:
        if actor.user_id == target.user_id:
            raise MemberError("A workspace needs its owner: transfer ownership to another member first.")
        raise MemberError("Only the owner can change the owner's role, by transferring ownership.")
    if target.user_id == actor.user_id:
        raise MemberError("You cannot change your own role; ask the owner or another admin.")
    chosen = parse_role(role, actor.role)
    previous = target.role
    if previous == chosen:
        raise MemberError(f"They already are {chosen.value}.")
    target.role = chosen.value
    await db.flush()
    return target, previous


async def remove_member(
    db: AsyncSession, *, workspace_id: str, actor_id: uuid.UUID, target_id: uuid.UUID | str
) -> Membership:
    """End someone's membership; their very next request is refused (guards re-read it every time)."""
    await lock_workspace(db, workspace_id)
    actor = await acting_member(db, workspace_id, actor_id, "members.manage")
    target = await _target(db, workspace_id, target_id)
    if target.user_id == actor.user_id:
        raise MemberError("To remove yourself, use “Leave workspace”.")
    if target.role == Role.OWNER:
        raise MemberError("The owner cannot be removed; they can transfer ownership and then leave.")
    await db.delete(target)
    await db.flush()
    return target


async def leave(db: AsyncSession, *, workspace_id: str, user_id: uuid.UUID) -> Membership:
    await lock_workspace(db, workspace_id)
    membership = await acting_member(db, workspace_id, user_id, "workspace.view")
    if membership.role == Role.OWNER:
        raise MemberError(
            "You own this workspace. Transfer ownership to another member before leaving, or delete the workspace."
        )
    await db.delete(membership)
    await db.flush()
    return membership


async def transfer_ownership(
    db: AsyncSession, *, workspace_id: str, actor_id: uuid.UUID, target_id: uuid.UUID | str
) -> tuple[Membership, str]:
    """Make another member the owner; the previous owner becomes an admin. Returns (new owner, their old role)."""
    await lock_workspace(db, workspace_id)
    actor = await acting_member(db, workspace_id, actor_id, "ownership.transfer")
    target = await _target(db, workspace_id, target_id)
    if target.user_id == actor.user_id:
        raise MemberError("You already own this workspace; choose another member.")
    previous = target.role
    target.role = Role.OWNER.value
    actor.role = Role.ADMIN.value
    await db.flush()
    return target, previous
