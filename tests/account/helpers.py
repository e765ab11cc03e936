"""Shared pieces of the account tests: users made straight in the database, and TestClients as browsers (built on
tests.helpers)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pyotp
from httpx2 import Response
from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.account.twofactor import seal_secret
from app.auth.models import RecoveryCode, User
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.security.totp import generate_recovery_codes, hash_recovery_code, new_totp_secret
from tests import helpers as shared
from tests.helpers import STRONG_PASSWORD, csrf_of, http_client, post_form, unique_email

__all__ = [
    "CHROME_MAC",
    "FIREFOX",
    "NEW_PASSWORD",
    "PASSWORD",
    "SAFARI_IOS",
    "browser",
    "csrf_of",
    "is_signed_in",
    "load_user",
    "make_user",
    "post_form",
    "sign_in",
    "totp_code",
    "turn_on_2fa",
    "unique_email",
    "unused_codes",
]

PASSWORD = STRONG_PASSWORD
NEW_PASSWORD = "quiet lantern orchard 1987 tide"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.5 Mobile/15E148 Safari/604.1"
)
CHROME_MAC = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


@contextmanager
def browser(settings: Settings, user_agent: str = CHROME_MAC) -> Iterator[TestClient]:
    """One browser: its own app, cookies, user agent and (so rate limits per IP stay apart) address."""
    with http_client(create_app(settings), user_agent=user_agent) as client:
        yield client


def sign_in(client: TestClient, email: str, password: str = PASSWORD, *, code: str | None = None) -> Response:
    """The login form, then (given a ``code``) the second step."""
    response = shared.sign_in(client, email, password)
    if code is not None:
        assert response.headers["location"] == "/login/2fa", response.text
        response = post_form(client, "/login/2fa", "/login/2fa", {"code": code})
    return response


def is_signed_in(client: TestClient) -> bool:
    response = client.get("/account/security")
    assert response.status_code in (200, 303)
    return response.status_code == 200


async def make_user(db: Database, email: str) -> uuid.UUID:
    """A confirmed account at ``email`` whose password is ``PASSWORD``; returns its id."""
    return (await shared.make_user(db, email=email, name="Tess")).id


async def turn_on_2fa(db: Database, settings: Settings, user_id: uuid.UUID) -> tuple[str, list[str]]:
    """Enrol a user directly (the pages are tested elsewhere); returns the secret and the recovery codes."""
    secret = new_totp_secret()
    codes = generate_recovery_codes()
    async with db.public_session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        user.totp_secret_enc = seal_secret(settings.keyring(), user.id, secret)
        user.totp_enabled_at = now()
        pepper = settings.secret_key.get_secret_value()
        session.add_all(RecoveryCode(user_id=user_id, code_hash=hash_recovery_code(c, pepper)) for c in codes)
    return secret, codes


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """The code for now (or the next step: the server accepts one step of drift, and refuses replays)."""
    return str(pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead))


async def load_user(db: Database, user_id: uuid.UUID) -> User:
    async with db.public_session() as session:
        user = await session.get(User, user_id)
        assert user is not None
        return user


async def unused_codes(db: Database, user_id: uuid.UUID) -> int:
    async with db.public_session() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(RecoveryCode)
            .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
        )
        return int(count or 0)
