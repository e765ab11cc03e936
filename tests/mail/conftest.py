"""A real SMTP server (aiosmtpd) on a free loopback port, and a database of the mail tests' own.

The outbox is shared by everything that runs in one database, so these tests get a fresh one: what they count
is only what they queued.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from app.config import Settings
from app.db import Database
from app.embedded.util import free_port
from tests.conftest import Services


@dataclass
class Received:
    envelope_to: list[str]
    message: EmailMessage


@dataclass
class Inbox:
    """What the SMTP server accepted, in order."""

    port: int
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def recipients(self) -> list[str]:
        with self.lock:
            return [address for item in self.received for address in item.envelope_to]

    def messages(self) -> list[Received]:
        with self.lock:
            return list(self.received)


class _Handler:
    def __init__(self, inbox: Inbox) -> None:
        self.inbox = inbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = message_from_bytes(envelope.original_content, policy=policy.default)
        assert isinstance(parsed, EmailMessage)
        with self.inbox.lock:
            self.inbox.received.append(Received(list(envelope.rcpt_tos), parsed))
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_server() -> Iterator[Inbox]:
    inbox = Inbox(port=free_port())
    controller = Controller(_Handler(inbox), hostname="127.0.0.1", port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()


@pytest.fixture(scope="module")
def mail_database_url(services: Services) -> str:
    return asyncio.run(services.new_database("marid_mail"))


@pytest.fixture
async def mail_db(mail_database_url: str) -> AsyncIterator[Database]:
    database = Database(mail_database_url, pool_size=2)
    yield database
    await database.dispose()


@pytest.fixture
def smtp_settings(services: Services, mail_database_url: str, smtp_server: Inbox) -> Settings:
    return Settings(
        env="test",
        database_url=mail_database_url,
        redis_url=services.redis.url,
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        smtp_starttls=False,
    )
