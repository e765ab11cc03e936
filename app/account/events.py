"""The person's own security log: recording account events, reading them back, and saying them in words.

Account events (sign-ins, failed sign-ins, password changes and resets, 2FA changes, sessions ended) belong
to the account holder. They used to be copied into the audit log of every workspace the person belonged to,
so any admin of any of those workspaces could follow where the person signed in for the others. A workspace's
audit log now holds only what happened in that workspace.

:func:`add_account_event` joins the caller's transaction (the change and its event commit together);
:func:`record_account_event` is a unit of work of its own, for refusals (a failed sign-in changes nothing else).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.account.devices import device_name, relative_time, utc_label
from app.account.models import AccountEvent
from app.auth.sessions import now
from app.db import Database

# In the second person: the security page speaks to the account holder about their own account.
SENTENCES: dict[str, str] = {
    "auth.login": "Signed in",
    "auth.login_failed": "Sign-in failed (wrong password)",
    "auth.2fa_failed": "Sign-in failed (wrong 2FA code)",
    "auth.logout": "Signed out",
    "auth.2fa_enabled": "Turned on two-factor authentication",
    "auth.2fa_disabled": "Turned off two-factor authentication",
    "auth.recovery_codes_regenerated": "Made new recovery codes",
    "auth.password_changed": "Changed your password",
    "auth.password_reset": "Reset your password",
    "auth.reauth_failed": "Confirming it was you failed (wrong password or code)",
    "auth.session_revoked": "Signed a session out",
    "auth.sessions_revoked": "Signed out everywhere else",
    "sso.password_login_blocked": "Password sign-in refused (a workspace requires single sign-on)",
    "account.email_changed": "Changed your e-mail address",
}
_METHODS = {
    "password": "with your password",
    "password+totp": "with your password and an authenticator code",
    "password+recovery_code": "with your password and a recovery code",
    "email_link": "by confirming your e-mail address",
    "invitation": "by creating your account from an invitation",
}
PAGE_SIZE = 20


def add_account_event(
    session: AsyncSession,
    user_id: uuid.UUID,
    action: str,
    *,
    ip: str = "",
    user_agent: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    session.add(
        AccountEvent(user_id=user_id, action=action, ip=ip[:64], user_agent=user_agent[:400], details=details or {})
    )


async def record_account_event(
    db: Database,
    user_id: uuid.UUID,
    action: str,
    *,
    ip: str = "",
    user_agent: str = "",
    details: dict[str, Any] | None = None,
) -> None:
    async with db.public_session() as session:
        add_account_event(session, user_id, action, ip=ip, user_agent=user_agent, details=details)


async def list_account_events(
    db: AsyncSession, user_id: uuid.UUID, *, before: int | None = None, limit: int = PAGE_SIZE
) -> list[AccountEvent]:
    """The user's events, newest first; ``before`` (an event id) pages back."""
    statement = select(AccountEvent).where(AccountEvent.user_id == user_id)
    if before is not None:
        statement = statement.where(AccountEvent.id < before)
    rows = await db.scalars(statement.order_by(AccountEvent.id.desc()).limit(limit))
    return list(rows)


def sentence(action: str, details: dict[str, Any]) -> str:
    """``Signed in with your password and an authenticator code``: what happened, for the account holder."""
    text = SENTENCES.get(action, action.replace(".", " ").replace("_", " ").capitalize())
    method = details.get("method") if isinstance(details, dict) else None
    if action in {"auth.login", "auth.password_reset"} and isinstance(method, str) and method in _METHODS:
        text += " " + _METHODS[method]
    ended = details.get("sessions_ended") if isinstance(details, dict) else None
    if isinstance(ended, int) and ended > 0:
        text += f"; {ended} other session{'' if ended == 1 else 's'} signed out"
    return text


@dataclass(frozen=True)
class EventRow:
    id: int
    sentence: str
    when: str
    when_utc: str
    when_iso: str
    ip: str
    device: str


def event_rows(events: list[AccountEvent], moment: datetime | None = None) -> list[EventRow]:
    moment = moment or now()
    return [
        EventRow(
            id=event.id,
            sentence=sentence(event.action, event.details),
            when=relative_time(event.at, moment),
            when_utc=utc_label(event.at),
            when_iso=event.at.isoformat(),
            ip=event.ip or "unknown",
            device=device_name(event.user_agent),
        )
        for event in events
    ]
