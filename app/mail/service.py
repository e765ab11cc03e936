"""Queue mail in the outbox (inside the caller's transaction) and deliver it from the worker.

With ``MARID_SMTP_HOST`` set, delivery goes over SMTP (STARTTLS by default). Without it (dev and test) mail
is marked delivered in place and can be read at ``/dev/mailbox``.

Each message is sent in units of work of its own, so one message can never hold up another:

1. *claim* (one short transaction): lock one due message (``SKIP LOCKED``: several workers never take the
   same one), count the attempt and push ``next_attempt_at`` out by the backoff. Committed before sending,
   so the attempt counts even if the worker dies while sending, and the backoff doubles as a lease.
2. *send*, outside any transaction; any exception while building or sending is a failed attempt.
3. *record* (another short transaction): sent, or the error; after ``MAX_ATTEMPTS`` failures the message is
   dead (``dead_at``), logged, and never tried again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.db import Database
from app.mail.compose import compose, smtp_send
from app.mail.layout import Mail
from app.mail.models import OutboxMessage

logger = logging.getLogger("marid.mail")

MAX_ATTEMPTS = 8
# 1, 2, 4, ... minutes between attempts, at most 6 hours: eight tries span about four hours of outage.
FIRST_RETRY = timedelta(minutes=1)
LONGEST_RETRY = timedelta(hours=6)


async def queue_mail(
    db: AsyncSession,
    *,
    kind: str,
    to: str,
    subject: str,
    body: str,
    html: str | None = None,
    workspace_id: str | None = None,
) -> OutboxMessage:
    message = OutboxMessage(
        kind=kind,
        to_address=to,
        subject=subject[:200],
        body_text=body,
        body_html=html,
        attempts=0,
        workspace_id=workspace_id,
    )
    db.add(message)
    await db.flush()
    return message


def retry_delay(attempts: int) -> timedelta:
    """How long to wait after the ``attempts``-th try before the next one (exponential, capped)."""
    delay: timedelta = FIRST_RETRY * (2 ** max(0, attempts - 1))
    return min(delay, LONGEST_RETRY)


@dataclass(frozen=True)
class Sent:
    """A delivered message, as the worker reports it (to the workspace's audit log for invitations)."""

    id: int
    kind: str
    to_address: str
    subject: str
    workspace_id: str | None


async def _claim(db: Database) -> OutboxMessage | None:
    async with db.public_session() as session:
        message = await session.scalar(
            select(OutboxMessage)
            .where(
                OutboxMessage.sent_at.is_(None),
                OutboxMessage.dead_at.is_(None),
                OutboxMessage.attempts < MAX_ATTEMPTS,
                OutboxMessage.next_attempt_at <= datetime.now(UTC),
            )
            .order_by(OutboxMessage.id)  # oldest first: mail goes out in the order it was queued
            .limit(1)
            .with_for_update(skip_locked=True)
        )
        if message is not None:
            message.attempts += 1
            message.next_attempt_at = datetime.now(UTC) + retry_delay(message.attempts)
        return message


async def _send(settings: Settings, message: OutboxMessage) -> str | None:
    """None when sent; otherwise what went wrong, for ``last_error``."""
    try:
        email = compose(
            settings, to=message.to_address, subject=message.subject, body=message.body_text, html=message.body_html
        )
        if settings.smtp_host:
            await asyncio.to_thread(smtp_send, settings, email)
    except Exception as error:  # whatever it is, it is this message's failure and nobody else's
        return f"{type(error).__name__}: {error}"[:500]
    return None


async def queue(db: AsyncSession, mail: Mail, *, kind: str, to: str, workspace_id: str | None = None) -> OutboxMessage:
    """Queue one of ``app.mail.messages``'s mails (text and HTML) in the caller's transaction."""
    return await queue_mail(
        db, kind=kind, to=to, subject=mail.subject, body=mail.text, html=mail.html, workspace_id=workspace_id
    )


# What the caller does in the transaction that marks a message sent (the worker: its audit entry).
OnSent = Callable[[AsyncSession, "Sent"], Awaitable[None]]
Unit = Callable[[], AbstractAsyncContextManager[AsyncSession]]


async def _record(unit: Unit, message: OutboxMessage, error: str | None, on_sent: OnSent | None) -> None:
    moment = datetime.now(UTC)
    async with unit() as session:
        row = await session.get(OutboxMessage, message.id, with_for_update=True, populate_existing=True)
        if row is None:  # its workspace was deleted meanwhile
            return
        if error is None:
            row.sent_at = moment
            row.last_error = None
            if on_sent is not None:
                await on_sent(session, Sent(row.id, row.kind, row.to_address, row.subject, row.workspace_id))
            return
        row.last_error = error
        if row.attempts >= MAX_ATTEMPTS:
            row.dead_at = moment
            logger.error("gave up on mail %s (%s) after %s attempts: %s", row.id, row.kind, row.attempts, error)
        else:
            logger.warning(
                "mail %s (%s) failed, attempt %s of %s: %s", row.id, row.kind, row.attempts, MAX_ATTEMPTS, error
            )


async def deliver_pending(
    db: Database, settings: Settings, *, limit: int = 50, on_sent: OnSent | None = None, unit: Unit | None = None
) -> list[Sent]:
    """Send up to ``limit`` due messages, one at a time, each in its own units of work; returns what was sent.

    ``on_sent`` runs in the transaction that marks a message sent, opened by ``unit`` (default: a public
    session), so whatever it records commits with the "sent" mark or not at all.
    """
    sent: list[Sent] = []
    for _ in range(limit):
        message = await _claim(db)
        if message is None:
            break
        error = await _send(settings, message)
        await _record(unit or db.public_session, message, error, on_sent)
        if error is None:
            sent.append(Sent(message.id, message.kind, message.to_address, message.subject, message.workspace_id))
    return sent
