"""The outbox against a real SMTP server: one bad message never holds up the others.

The attack (issue 8, defect 3): a display name or workspace name with CR/LF reached a mail header; building the
message raised ValueError, which the outbox did not catch, so the whole batch rolled back, attempts never rose
and every tenant's mail waited behind it for ever. The poison rows here are inserted directly, as the old
code could have stored them.
"""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import delete, select, update

from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus
from app.mail.jobs import deliver_mail
from app.mail.models import OutboxMessage
from app.mail.service import MAX_ATTEMPTS, queue_mail
from tests.mail.conftest import Inbox


async def _deliver(db: Database, settings: Settings) -> int:
    # The worker's own job, as arq runs it (with what the worker's start-up put in its context).
    redis = Redis.from_url(settings.redis_url)
    try:
        return await deliver_mail({"db": db, "settings": settings, "bus": EventBus(redis)})
    finally:
        await redis.aclose()


async def _row(db: Database, message_id: int) -> OutboxMessage:
    async with db.public_session() as session:
        row = await session.get(OutboxMessage, message_id)
        assert row is not None
        return row


async def _make_due(db: Database, message_id: int) -> None:
    """Let the backoff pass (what waiting would do), without waiting."""
    async with db.public_session() as session:
        await session.execute(update(OutboxMessage).where(OutboxMessage.id == message_id).values(next_attempt_at=now()))


async def test_a_poison_message_between_two_good_ones(
    mail_db: Database, smtp_settings: Settings, smtp_server: Inbox
) -> None:
    async with mail_db.public_session() as session:
        await session.execute(delete(OutboxMessage))
        first = await queue_mail(session, kind="verify-email", to="first@example.com", subject="First", body="one")
        poison = OutboxMessage(
            kind="invitation",
            to_address="victim@example.com",
            subject="Eve\r\nBcc: everyone@example.com\r\n invited you to Acme on Marid",
            body_text="Accept the invitation",
            attempts=0,
        )
        session.add(poison)
        await session.flush()
        second = await queue_mail(session, kind="password-reset", to="second@example.com", subject="Second", body="two")
    first_id, poison_id, second_id = first.id, poison.id, second.id

    assert await _deliver(mail_db, smtp_settings) == 2
    assert sorted(smtp_server.recipients()) == ["first@example.com", "second@example.com"]
    for message_id in (first_id, second_id):
        row = await _row(mail_db, message_id)
        assert row.sent_at is not None and row.attempts == 1 and row.last_error is None

    row = await _row(mail_db, poison_id)
    assert row.attempts == 1 and row.sent_at is None and row.dead_at is None
    assert row.last_error and "ValueError" in row.last_error
    # Backoff: not tried again at once.
    assert row.next_attempt_at > now() + timedelta(seconds=30)
    assert await _deliver(mail_db, smtp_settings) == 0
    assert (await _row(mail_db, poison_id)).attempts == 1

    previous_delay = row.next_attempt_at - now()
    for attempt in range(2, MAX_ATTEMPTS + 1):
        await _make_due(mail_db, poison_id)
        assert await _deliver(mail_db, smtp_settings) == 0
        row = await _row(mail_db, poison_id)
        assert row.attempts == attempt
        if attempt < MAX_ATTEMPTS:
            assert row.dead_at is None
            delay = row.next_attempt_at - now()
            assert delay > previous_delay  # exponential: each wait longer than the last
            previous_delay = delay
    assert row.dead_at is not None and row.sent_at is None

    # Dead is final: never tried again, even once due.
    await _make_due(mail_db, poison_id)
    assert await _deliver(mail_db, smtp_settings) == 0
    assert (await _row(mail_db, poison_id)).attempts == MAX_ATTEMPTS
    # Each good message arrived exactly once, and nothing else did.
    assert sorted(smtp_server.recipients()) == ["first@example.com", "second@example.com"]


async def test_headers_are_built_by_the_mail_library(
    mail_db: Database, smtp_settings: Settings, smtp_server: Inbox
) -> None:
    settings = smtp_settings.model_copy(update={"mail_from": "Märid Notifications <no-reply@marid.example>"})
    async with mail_db.public_session() as session:
        await session.execute(delete(OutboxMessage))
        await queue_mail(
            session, kind="invitation", to="zoe@example.com", subject="Zoë “quoted” invited you", body="Hello"
        )
    assert await _deliver(mail_db, settings) == 1
    [received] = smtp_server.messages()
    message = received.message
    assert message["From"].addresses[0].display_name == "Märid Notifications"
    assert message["From"].addresses[0].addr_spec == "no-reply@marid.example"
    assert message["To"].addresses[0].addr_spec == "zoe@example.com"
    assert message["Subject"] == "Zoë “quoted” invited you"
    assert message.get_content().strip() == "Hello"


async def test_a_refusing_server_counts_as_a_failed_attempt(mail_db: Database, smtp_settings: Settings) -> None:
    # Nothing listens on this port: connecting fails, the attempt is counted and the message waits its turn.
    from app.embedded.util import free_port

    settings = smtp_settings.model_copy(update={"smtp_port": free_port()})
    async with mail_db.public_session() as session:
        await session.execute(delete(OutboxMessage))
        message = await queue_mail(session, kind="verify-email", to="later@example.com", subject="Later", body="x")
    assert await _deliver(mail_db, settings) == 0
    row = await _row(mail_db, message.id)
    assert row.attempts == 1 and row.sent_at is None and row.dead_at is None and row.last_error
    async with mail_db.public_session() as session:
        due = await session.scalar(select(OutboxMessage.id).where(OutboxMessage.next_attempt_at <= now()))
    assert due is None
