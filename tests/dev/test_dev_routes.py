"""``/dev/...`` exists only in a process that ``marid dev`` started (or a test that asks for it by name).

The dev mailbox shows every mail with its live links (password resets, invitations): anywhere else it would
hand accounts to whoever opens it.
"""

from __future__ import annotations

import base64
import secrets

from app.config import Settings
from app.main import create_app
from tests.helpers import http_client

PRODUCTION = {
    "env": "production",
    "secret_key": secrets.token_urlsafe(48),
    "encryption_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "database_url": "postgresql+asyncpg://marid:pw@db.internal/marid",
    "redis_url": "redis://cache.internal:6379/0",
    "base_url": "https://marid.example.com",
    "smtp_host": "smtp.example.com",
}


def mailbox_status(settings: Settings) -> tuple[int, bool]:
    """The answer to GET /dev/mailbox, and whether the sign-in page links to it."""
    with http_client(create_app(settings)) as client:
        login = client.get("/login").text
        return client.get("/dev/mailbox").status_code, "/dev/mailbox" in login


def test_no_dev_routes_in_test_mode(settings: Settings) -> None:
    assert settings.env == "test"
    assert mailbox_status(settings) == (404, False)


def test_no_dev_routes_in_production() -> None:
    assert mailbox_status(Settings(**PRODUCTION)) == (404, False)


def test_a_test_that_asks_for_the_mailbox_gets_it(settings: Settings) -> None:
    assert mailbox_status(settings.model_copy(update={"dev_routes": True})) == (200, True)


def test_no_dev_routes_in_dev_mode_without_the_flag(settings: Settings) -> None:
    """``MARID_ENV=dev`` alone (say, set by hand on a server) does not publish the mailbox: ``marid dev`` sets both."""
    assert mailbox_status(settings.model_copy(update={"env": "dev"})) == (404, False)
