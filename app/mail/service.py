"""Queue mail in the outbox (inside the caller's transaction) and deliver it from the worker.

With ``MARID_SMTP_HOST`` set, delivery goes over SMTP (STARTTLS by default). Without it (dev and test) mail
is marked delivered in place and can be read at ``/dev/mailbox``.
"""

from __future__ import annotations

import asyncio
import smtplib
from datetime import UTC, datetime
from email.message import EmailMessage

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.config import Settings
from app.mail.models import OutboxMessage

MAX_ATTEMPTS = 8


async def queue_mail(
    db: AsyncSession, *, kind: str, to: str, subject: str, body: str, workspace_id: str | None = None
) -> OutboxMessage:
    message = OutboxMessage(
        kind=kind, to_address=to, subject=subject, body_text=body, attempts=0, workspace_id=workspace_id
    )
    db.add(message)
    await db.flush()
    return message


def _smtp_send(settings: Settings, message: OutboxMessage) -> None:
    email = EmailMessage()
    email["From"] = settings.mail_from
    email["To"] = message.to_address
    email["Subject"] = message.subject
    email.set_content(message.body_text)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=20) as client:
        if settings.smtp_starttls:
            client.starttls()
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        client.send_message(email)


async def deliver_pending(db: AsyncSession, settings: Settings, *, limit: int = 50) -> list[OutboxMessage]:
    """Send what is waiting and return what was sent; rows are locked (SKIP LOCKED) so several workers
    never send one twice."""
    pending = (
        await db.scalars(
            select(OutboxMessage)
            .where(OutboxMessage.sent_at.is_(None), OutboxMessage.attempts < MAX_ATTEMPTS)
            .order_by(OutboxMessage.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).all()
    sent: list[OutboxMessage] = []
    for message in pending:
        message.attempts += 1
        try:
            if settings.smtp_host:
                await asyncio.to_thread(_smtp_send, settings, message)
        except (OSError, smtplib.SMTPException) as error:
            message.last_error = f"{type(error).__name__}: {error}"[:500]
            continue
        message.sent_at = datetime.now(UTC)
        message.last_error = None
        sent.append(message)
    return sent
