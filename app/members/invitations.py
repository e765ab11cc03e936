"""Invitations: sending them (with the hourly allowance), withdrawing them, and the link an invitee opens.
No HTTP here; callers own the transaction, and each change records its audit entry in it."""

from __future__ import annotations

import base64
import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record
from app.auth.models import User
from app.auth.service import email_problem, normalise_email
from app.auth.sessions import now
from app.config import Settings
from app.errors import TooManyRequests
from app.mail import messages
from app.mail.service import queue
from app.members.service import (
    InvitationNotFound,
    MemberError,
    acting_member,
    lock_workspace,
    membership_of,
    parse_role,
    person_of,
    uuid_or_none,
)
from app.security.ratelimit import RateLimiter, retry_message
from app.security.single_line import strip_control_characters
from app.security.tokens import token_hash
from app.tenants.models import Invitation, Membership, Workspace

INVITATION_DAYS = 7
MAX_INVITES_AT_ONCE = 20
# Invitations sent per person and hour (each address counts once).
INVITES_PER_HOUR = 50
_ADDRESS_SEPARATORS = re.compile(r"[\s,;]+")
# A reference token from new_token(): urlsafe base64 of 32 bytes.
_TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,128}$")


@dataclass(frozen=True)
class InvitationView:
    """An invitation as its link shows it: where to, from whom, as what, and whether it can still be used."""

    invitation: Invitation
    workspace: Workspace
    inviter: str
    problem: str | None


def split_addresses(raw: str) -> list[str]:
    """The addresses typed in a form, separated by commas, semicolons, spaces or new lines (not yet checked)."""
    return [part for part in _ADDRESS_SEPARATORS.split(raw) if part]


def clean_addresses(addresses: Sequence[str]) -> list[str]:
    """Normalised, de-duplicated e-mail addresses; MemberError when there are none, too many, or bad ones."""
    cleaned: list[str] = []
    for part in addresses:
        address = normalise_email(part)
        if address and address not in cleaned:
            cleaned.append(address)
    if not cleaned:
        raise MemberError("Enter at least one e-mail address.")
    if len(cleaned) > MAX_INVITES_AT_ONCE:
        raise MemberError(f"Invite at most {MAX_INVITES_AT_ONCE} people at once.")
    bad = [address for address in cleaned if email_problem(address)]
    if bad:
        shown = ", ".join(strip_control_characters(address)[:60] for address in bad[:3])
        raise MemberError(f"Not a valid e-mail address: {shown}. Write addresses like name@example.com.")
    return cleaned


def invitation_link(settings: Settings, token: str) -> str:
    """The link an admin copies from the members page and shares as they like."""
    return settings.base_url.rstrip("/") + f"/invite/{token}"


def invitation_token(settings: Settings, invitation_id: uuid.UUID) -> str:
    """The invitation's link token, derived from its id with the secret key (only its hash is stored).

    Derived rather than random, so the members page can show the same link again ("Copy link") and "Resend" mails
    the link the first mail had; whoever lacks the secret key cannot make one from an id.
    """
    digest = hmac.new(
        settings.secret_key.get_secret_value().encode(), b"invitation:" + str(invitation_id).encode(), "sha256"
    )
    return base64.urlsafe_b64encode(digest.digest()).rstrip(b"=").decode()


def mail_proof(settings: Settings, token: str) -> str:
    """What only the mailed link carries (``?m=``): whoever opens it read the invited address's mail, so signing up
    through it needs no confirmation mail. A copied link lacks it: an admin could share that link with anyone."""
    digest = hmac.new(settings.secret_key.get_secret_value().encode(), b"invitation-mailed:" + token.encode(), "sha256")
    return base64.urlsafe_b64encode(digest.digest()[:18]).decode()


def proves_mailbox(settings: Settings, token: str, proof: str) -> bool:
    return bool(proof) and hmac.compare_digest(mail_proof(settings, token), proof)


def mailed_link(settings: Settings, token: str) -> str:
    return invitation_link(settings, token) + "?m=" + mail_proof(settings, token)


def shareable_link(settings: Settings, invitation: Invitation) -> str | None:
    """The invitation's link, if it is one Marid can show again (those sent before links were derived are not:
    "Resend" gives them one)."""
    token = invitation_token(settings, invitation.id)
    return invitation_link(settings, token) if token_hash(token) == invitation.token_hash else None


async def charge_invitations(limiter: RateLimiter, inviter: uuid.UUID, count: int) -> None:
    """Count ``count`` invitations against the inviter's hourly allowance; refuse them all if it would be exceeded."""
    subject = str(inviter)
    allowance = await limiter.peek("members.invite", subject, limit=INVITES_PER_HOUR, window_seconds=3600)
    if not allowance.allowed or allowance.remaining < count:
        if allowance.allowed:
            raise TooManyRequests(
                f"You can send {allowance.remaining} more invitations this hour (at most {INVITES_PER_HOUR} an hour)."
            )
        raise TooManyRequests(retry_message(allowance, "invitations sent"), retry_after=allowance.retry_after)
    for _ in range(count):
        result = await limiter.hit("members.invite", subject, limit=INVITES_PER_HOUR, window_seconds=3600)
        if not result.allowed:
            raise TooManyRequests(retry_message(result, "invitations sent"), retry_after=result.retry_after)


async def refund_invitations(limiter: RateLimiter, inviter: uuid.UUID, count: int) -> None:
    """Give back what :func:`charge_invitations` counted, for invitations that were refused and never sent."""
    for _ in range(count):
        await limiter.refund("members.invite", str(inviter), limit=INVITES_PER_HOUR, window_seconds=3600)


async def send_invitations(
    db: AsyncSession,
    settings: Settings,
    limiter: RateLimiter,
    *,
    workspace_id: str,
    actor: Actor,
    addresses: Sequence[str],
    role: str,
) -> list[Invitation]:
    """Check the addresses, charge them to the inviter's allowance, then :func:`invite` (pages and API alike)."""
    emails = clean_addresses(addresses)
    await charge_invitations(limiter, person_of(actor), len(emails))
    try:
        return await invite(db, settings, workspace_id=workspace_id, actor=actor, addresses=emails, role=role)
    except Exception:
        # Refused (already a member, a role they may not give...): nothing was sent, so nothing is counted.
        await refund_invitations(limiter, person_of(actor), len(emails))
        raise


async def invite(
    db: AsyncSession,
    settings: Settings,
    *,
    workspace_id: str,
    actor: Actor,
    addresses: Sequence[str],
    role: str,
) -> list[Invitation]:
    """Invite each address as ``role`` and queue the mails; a fresh invitation replaces a pending one.

    All or nothing: if any address is refused (invalid, already a member) no invitation is created.
    One ``member.invited`` entry per invitation.
    """
    workspace = await lock_workspace(db, workspace_id)
    membership = await acting_member(db, workspace_id, person_of(actor), "members.invite")
    chosen = parse_role(role, membership.role)
    emails = clean_addresses(addresses)
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
    created: list[Invitation] = []
    for email in emails:
        invitation_id = uuid.uuid4()
        token = invitation_token(settings, invitation_id)
        invitation = Invitation(
            id=invitation_id,
            workspace_id=workspace_id,
            email=email,
            role=chosen.value,
            token_hash=token_hash(token),
            invited_by=membership.user_id,
            expires_at=moment + timedelta(days=INVITATION_DAYS),
        )
        db.add(invitation)
        mail = messages.invitation(
            workspace.name, actor.label, chosen.value, mailed_link(settings, token), INVITATION_DAYS
        )
        await queue(db, mail, kind="invitation", to=email, workspace_id=workspace_id)
        created.append(invitation)
    await db.flush()
    for invitation in created:
        record(db, workspace_id, "member.invited", actor, _details(invitation))
    return created


def _details(invitation: Invitation) -> dict[str, str]:
    return {"invitation_id": str(invitation.id), "email": invitation.email, "role": invitation.role}


async def revoke_invitation(
    db: AsyncSession, *, workspace_id: str, actor: Actor, invitation_id: uuid.UUID | str
) -> Invitation:
    """Withdraw a pending invitation; ``InvitationNotFound`` if this workspace has no such invitation."""
    await lock_workspace(db, workspace_id)
    await acting_member(db, workspace_id, person_of(actor), "members.invite")
    parsed = uuid_or_none(invitation_id)
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
    record(db, workspace_id, "invitation.revoked", actor, _details(invitation))
    return invitation


async def resend_invitation(
    db: AsyncSession, settings: Settings, *, workspace_id: str, actor: Actor, invitation_id: uuid.UUID | str
) -> Invitation:
    """Mail a pending invitation again (its link stays the same), and give it a fresh week; an expired one too."""
    workspace = await lock_workspace(db, workspace_id)
    await acting_member(db, workspace_id, person_of(actor), "members.invite")
    parsed = uuid_or_none(invitation_id)
    statement = select(Invitation).where(Invitation.id == parsed, Invitation.workspace_id == workspace_id)
    invitation = None if parsed is None else await db.scalar(statement.with_for_update())
    if invitation is None:
        raise InvitationNotFound("That invitation does not exist.")
    if invitation.accepted_at is not None:
        raise MemberError("That invitation was already accepted.")
    if invitation.revoked_at is not None:
        raise MemberError("That invitation was withdrawn; invite them again instead.")
    token = invitation_token(settings, invitation.id)
    invitation.token_hash = token_hash(token)  # an invitation from before derived links gets one now
    invitation.expires_at = now() + timedelta(days=INVITATION_DAYS)
    inviter = actor.label or "A member"
    mail = messages.invitation(workspace.name, inviter, invitation.role, mailed_link(settings, token), INVITATION_DAYS)
    await queue(db, mail, kind="invitation", to=invitation.email, workspace_id=workspace_id)
    await db.flush()
    record(db, workspace_id, "invitation.resent", actor, _details(invitation))
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


async def proven_invitation(db: AsyncSession, settings: Settings, token: str, proof: str) -> InvitationView | None:
    """The usable invitation behind a mailed link (its token and its ``?m=`` proof), or None."""
    if not token or not proves_mailbox(settings, token, proof):
        return None
    try:
        view = await find_invitation(db, token)
    except MemberError:
        return None
    return None if view.problem else view


async def address_has_account(db: AsyncSession, email: str) -> bool:
    return await db.scalar(select(User.id).where(func.lower(User.email) == normalise_email(email))) is not None


async def accept(db: AsyncSession, *, token: str, user: User, actor: Actor) -> tuple[InvitationView, Membership, bool]:
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
    membership = await membership_of(db, invitation.workspace_id, user.id)
    created = membership is None
    if membership is None:
        membership = Membership(workspace_id=invitation.workspace_id, user_id=user.id, role=invitation.role)
        db.add(membership)
    await db.flush()
    details = _details(invitation)
    if not created:
        details["note"] = f"was already a member (as {membership.role}); role unchanged"
    record(db, invitation.workspace_id, "invitation.accepted", actor, details)
    return view, membership, created
