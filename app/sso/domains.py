"""E-mail domains a workspace proves it owns (DNS TXT), so that its single sign-on may speak for them.

An admin adds a domain and gets a record to publish: TXT ``marid-domain-verification=<token>`` at
``_marid-verify.<domain>``. "Verify" reads it through DNS; only then does the domain count for creating and
linking accounts, for joining the workspace, and for the /sso lookup. A verified domain belongs to one
workspace at a time (a unique partial index): another workspace can take it only by publishing its own token
while the holder's record is gone, which only whoever runs the domain's DNS can do.

No HTTP here; services flush, the caller commits; each change records its audit entry in that transaction.
The DNS lookup itself is :func:`lookup`, run before the transaction that records its outcome, so no row stays
locked while DNS answers.
"""

from __future__ import annotations

import re
import secrets
import uuid
from dataclasses import dataclass

import dns.asyncresolver
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record
from app.auth.sessions import now
from app.errors import Refused
from app.sso.dns import DnsLookupError, record_name, record_value, txt_values
from app.sso.enforcement import end_managed_password_sessions, managed_accounts_on
from app.sso.models import SsoDomain

MAX_DOMAINS = 50
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")


class DomainError(Refused):
    """A domain request that cannot be done; the message says why, for the admin."""


def domain_problem(domain: str) -> str | None:
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return f"“{domain}” is not a domain name like example.com."
    if labels[-1].isdigit():
        return f"“{domain}” is not a domain name like example.com."
    return None


def normalise_domain(raw: str) -> str:
    """Lower-case ASCII without "@" or a final dot; internationalised names become their xn-- form."""
    domain = raw.strip().lower().lstrip("@").rstrip(".")
    if not domain.isascii():
        try:
            domain = domain.encode("idna").decode("ascii")
        except UnicodeError as error:
            raise DomainError(f"“{raw.strip()[:80]}” is not a domain name like example.com.") from error
    if problem := domain_problem(domain):
        raise DomainError(problem[:200])
    return domain


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


async def list_domains(db: AsyncSession, workspace_id: str) -> list[SsoDomain]:
    rows = await db.scalars(select(SsoDomain).where(SsoDomain.workspace_id == workspace_id).order_by(SsoDomain.domain))
    return list(rows)


async def verified_domains(db: AsyncSession, workspace_id: str) -> set[str]:
    rows = await db.scalars(
        select(SsoDomain.domain).where(SsoDomain.workspace_id == workspace_id, SsoDomain.verified_at.is_not(None))
    )
    return set(rows)


async def is_verified(db: AsyncSession, workspace_id: str, domain: str) -> bool:
    """Whether ``workspace_id`` has proven it owns ``domain`` (and still holds it)."""
    found = await db.scalar(
        select(SsoDomain.id).where(
            SsoDomain.workspace_id == workspace_id, SsoDomain.domain == domain, SsoDomain.verified_at.is_not(None)
        )
    )
    return found is not None


async def find_domain(db: AsyncSession, workspace_id: str, domain_id: uuid.UUID) -> SsoDomain | None:
    # Always scoped to the workspace: another workspace's domain id is simply not found.
    return await db.scalar(select(SsoDomain).where(SsoDomain.workspace_id == workspace_id, SsoDomain.id == domain_id))


async def add_domain(db: AsyncSession, workspace_id: str, raw: str, actor: Actor) -> SsoDomain:
    """A new, unverified domain with a fresh token; raises DomainError (nothing added) when it cannot be."""
    domain = normalise_domain(raw)
    existing = await db.scalar(
        select(SsoDomain.id).where(SsoDomain.workspace_id == workspace_id, SsoDomain.domain == domain)
    )
    if existing is not None:
        raise DomainError(f"{domain} is already on the list.")
    count = await db.scalar(select(func.count()).select_from(SsoDomain).where(SsoDomain.workspace_id == workspace_id))
    if (count or 0) >= MAX_DOMAINS:
        raise DomainError(f"A workspace can have at most {MAX_DOMAINS} domains.")
    row = SsoDomain(workspace_id=workspace_id, domain=domain, token=secrets.token_hex(16))
    db.add(row)
    await db.flush()
    record(db, workspace_id, "sso.domain_added", actor, {"domain": row.domain})
    return row


async def remove_domain(db: AsyncSession, workspace_id: str, domain_id: uuid.UUID, actor: Actor) -> SsoDomain | None:
    """Remove a domain (verified or not); the removed row, or None if the workspace has no such domain."""
    row = await find_domain(db, workspace_id, domain_id)
    if row is not None:
        await db.delete(row)
        await db.flush()
        details = {"domain": row.domain, "was_verified": row.verified_at is not None}
        record(db, workspace_id, "sso.domain_removed", actor, details)
    return row


@dataclass(frozen=True)
class Lookup:
    """What DNS said at ``record_name(domain)``: the TXT strings, or why it could not be read."""

    values: tuple[str, ...]
    error: str | None = None


async def lookup(resolver: dns.asyncresolver.Resolver, domain: str) -> Lookup:
    try:
        return Lookup(tuple(await txt_values(resolver, record_name(domain))))
    except DnsLookupError as error:
        return Lookup((), str(error))


@dataclass(frozen=True)
class CheckOutcome:
    domain: SsoDomain
    verified: bool
    message: str
    # The workspace that held the domain until now (its record was gone, this one's was there).
    taken_from: str | None = None


async def record_check(
    db: AsyncSession, workspace_id: str, domain_id: uuid.UUID, found: Lookup, *, token: str, actor: Actor
) -> CheckOutcome:
    """Apply a DNS lookup made for the domain while its token was ``token``; raises DomainError if it is gone.

    Whoever holds the domain keeps it while their record is still published next to ours. Once verified, the
    password sessions of members it makes managed end. Audit: ``sso.domain_verified`` (and ``sso.domain_taken``
    in the workspace that lost it, without saying who took it) or ``sso.domain_verify_failed``.
    """
    outcome = await _check(db, workspace_id, domain_id, found, token=token)
    domain = outcome.domain.domain
    if not outcome.verified:
        record(db, workspace_id, "sso.domain_verify_failed", actor, {"domain": domain, "error": outcome.message[:300]})
        return outcome
    sessions_ended = 0
    if await managed_accounts_on(db, workspace_id):
        # Members at this domain are managed accounts from now on.
        sessions_ended = await end_managed_password_sessions(db, workspace_id)
    record(
        db, workspace_id, "sso.domain_verified", actor, {"domain": domain, "password_sessions_ended": sessions_ended}
    )
    if outcome.taken_from:
        record(db, outcome.taken_from, "sso.domain_taken", Actor.system(), {"domain": domain})
    return outcome


async def _check(
    db: AsyncSession, workspace_id: str, domain_id: uuid.UUID, found: Lookup, *, token: str
) -> CheckOutcome:
    row = await db.scalar(
        select(SsoDomain).where(SsoDomain.workspace_id == workspace_id, SsoDomain.id == domain_id).with_for_update()
    )
    if row is None or row.token != token:
        raise DomainError("That domain is no longer on the list.")
    moment = now()
    row.last_checked_at = moment
    if row.verified_at is not None:
        row.last_error = None
        return CheckOutcome(row, True, f"{row.domain} is verified.")
    wanted = record_value(row.token)
    if found.error is not None:
        return _failed(row, found.error)
    if wanted not in found.values:
        seen = "no TXT record" if not found.values else f"only {', '.join(v[:80] for v in found.values[:3])}"
        return _failed(row, f"Found {seen} at {record_name(row.domain)}; expected “{wanted}”.")
    holder = await db.scalar(
        select(SsoDomain)
        .where(SsoDomain.domain == row.domain, SsoDomain.verified_at.is_not(None), SsoDomain.id != row.id)
        .with_for_update()
    )
    taken_from = None
    if holder is not None:
        if record_value(holder.token) in found.values:
            return _failed(
                row,
                f"Another workspace has verified {row.domain} and its record is still published. "
                "Remove that record from your DNS first, then verify again.",
            )
        # Its record is gone and ours is there: whoever runs the domain's DNS chose this workspace.
        holder.verified_at = None
        holder.last_checked_at, holder.last_error = moment, "Another workspace proved it owns this domain."
        taken_from = holder.workspace_id
        await db.flush()  # before ours becomes verified: one verified row per domain (unique index)
    row.verified_at, row.last_error = moment, None
    await db.flush()
    return CheckOutcome(row, True, f"{row.domain} is verified.", taken_from)


def _failed(row: SsoDomain, message: str) -> CheckOutcome:
    row.last_error = message[:500]
    return CheckOutcome(row, False, message)


async def workspace_for_domain(db: AsyncSession, domain: str) -> str | None:
    """The workspace that has verified ``domain``, if any."""
    return await db.scalar(
        select(SsoDomain.workspace_id).where(SsoDomain.domain == domain, SsoDomain.verified_at.is_not(None))
    )
