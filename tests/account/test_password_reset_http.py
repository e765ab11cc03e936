"""Password reset by e-mail link: the same answer for any address, single use, 30 minutes, ends every
session, and never a way around 2FA."""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from sqlalchemy import func, select, update
from starlette.testclient import TestClient

from app.account.password_reset import RESET_LIFETIME
from app.auth.models import PasswordReset, User
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.security.passwords import verify_password
from tests.account.helpers import (
    FIREFOX,
    NEW_PASSWORD,
    PASSWORD,
    browser,
    csrf_of,
    is_signed_in,
    load_user,
    make_user,
    post_form,
    sign_in,
    totp_code,
    turn_on_2fa,
    unique_email,
    unused_codes,
)


async def reset_mails(db: Database, email: str) -> list[str]:
    async with db.public_session() as session:
        bodies = await session.scalars(
            select(OutboxMessage.body_text)
            .where(OutboxMessage.to_address == email, OutboxMessage.kind == "password-reset")
            .order_by(OutboxMessage.id)
        )
        return list(bodies)


async def ask_for_link(client: TestClient, db: Database, email: str) -> str:
    response = post_form(client, "/password/forgot", "/password/forgot", {"email": email})
    assert response.status_code == 303 and response.headers["location"] == "/password/forgot?sent=1"
    mails = await reset_mails(db, email)
    assert mails, "no reset mail"
    match = re.search(r"https?://\S+(/password/reset/\S+)", mails[-1])
    assert match
    return match.group(1)


def reset(client: TestClient, path: str, password: str, code: str | None = None) -> tuple[int, str]:
    page = client.get(path)
    if page.status_code != 200:
        return page.status_code, page.text
    data = {"csrf_token": csrf_of(page.text), "password": password}
    if code is not None:
        data["code"] = code
    response = client.post(path, data=data)
    return response.status_code, response.headers.get("location", response.text)


async def password_is(db: Database, user_id: uuid.UUID, password: str) -> bool:
    return verify_password((await load_user(db, user_id)).password_hash, password)


async def test_forgot_password_says_the_same_for_unknown_addresses(settings: Settings, db: Database) -> None:
    known = unique_email("known")
    await make_user(db, known)
    unknown = unique_email("nobody")
    with browser(settings) as client:
        answers = [post_form(client, "/password/forgot", "/password/forgot", {"email": e}) for e in (known, unknown)]
        assert [(a.status_code, a.headers["location"]) for a in answers] == [(303, "/password/forgot?sent=1")] * 2
        assert "If an account uses that address" in client.get("/password/forgot?sent=1").text
        bad = post_form(client, "/password/forgot", "/password/forgot", {"email": "not an address"})
        assert bad.status_code == 422 and "valid e-mail" in bad.text
    assert len(await reset_mails(db, known)) == 1
    assert await reset_mails(db, unknown) == []
    async with db.public_session() as session:
        expires = await session.scalar(
            select(PasswordReset.expires_at).join(User, User.id == PasswordReset.user_id).where(User.email == known)
        )
    assert expires is not None and timedelta(minutes=29) < expires - now() <= RESET_LIFETIME


async def test_reset_link_works_once_and_ends_every_session(settings: Settings, db: Database) -> None:
    email = unique_email("reset")
    user_id = await make_user(db, email)
    with browser(settings) as laptop, browser(settings, FIREFOX) as phone, browser(settings) as stranger:
        sign_in(laptop, email)
        sign_in(phone, email)
        path = await ask_for_link(stranger, db, email)
        assert "Choose a new password" in stranger.get(path).text

        # A bad password is refused and the link stays usable.
        status, body = reset(stranger, path, "short")
        assert status == 422 and "at least 12" in body
        assert await password_is(db, user_id, PASSWORD)

        assert reset(stranger, path, NEW_PASSWORD) == (303, "/login?reset=1")
        assert "Your password was changed" in stranger.get("/login?reset=1").text
        assert await password_is(db, user_id, NEW_PASSWORD)
        assert not is_signed_in(laptop) and not is_signed_in(phone)

        # The same link again: a clear page, and nothing changes.
        status, body = reset(stranger, path, "another long password 2024")
        assert status == 400 and "already used" in body
        posted = stranger.post(path, data={"csrf_token": csrf_of(stranger.get("/login").text), "password": "x" * 20})
        assert posted.status_code == 400
        assert await password_is(db, user_id, NEW_PASSWORD)

        assert sign_in(laptop, email, PASSWORD).status_code == 401
        assert sign_in(laptop, email, NEW_PASSWORD).status_code == 303
        assert is_signed_in(laptop)
        assert reset(stranger, "/password/reset/made-up-token", NEW_PASSWORD)[0] == 400


async def test_reset_link_expires_after_30_minutes(settings: Settings, db: Database) -> None:
    email = unique_email("expiry")
    user_id = await make_user(db, email)
    with browser(settings) as client:
        path = await ask_for_link(client, db, email)
        form = client.get(path)
        assert form.status_code == 200
        async with db.public_session() as session:
            await session.execute(
                update(PasswordReset)
                .where(PasswordReset.user_id == user_id)
                .values(expires_at=now() - timedelta(seconds=1))
            )
        assert "expired" in client.get(path).text
        response = client.post(path, data={"csrf_token": csrf_of(form.text), "password": NEW_PASSWORD})
        assert response.status_code == 400 and "expired" in response.text
    assert await password_is(db, user_id, PASSWORD)
    async with db.public_session() as session:
        used = await session.scalar(
            select(func.count())
            .select_from(PasswordReset)
            .where(PasswordReset.user_id == user_id, PasswordReset.used_at.is_not(None))
        )
    assert used == 0


async def test_reset_does_not_bypass_2fa(settings: Settings, db: Database) -> None:
    email = unique_email("reset2fa")
    user_id = await make_user(db, email)
    secret, codes = await turn_on_2fa(db, settings, user_id)
    with browser(settings) as client:
        path = await ask_for_link(client, db, email)
        assert "Two-factor code" in client.get(path).text
        for code in (None, "", "123456", "zzzz-zzzz-zzzz-zzzz"):
            status, body = reset(client, path, NEW_PASSWORD, code)
            assert status == 422 and ("code" in body.lower()), body
        assert await password_is(db, user_id, PASSWORD)
        assert await unused_codes(db, user_id) == 10

        # A recovery code works, and is used up.
        assert reset(client, path, NEW_PASSWORD, codes[3]) == (303, "/login?reset=1")
        assert await password_is(db, user_id, NEW_PASSWORD)
        assert await unused_codes(db, user_id) == 9
        user = await load_user(db, user_id)
        assert user.has_2fa  # a reset never turns 2FA off

        # Signing in with the new password still asks for the second factor.
        response = post_form(client, "/login", "/login", {"email": email, "password": NEW_PASSWORD})
        assert response.headers["location"] == "/login/2fa"

        # A TOTP code works for the next reset, once.
        second = await ask_for_link(client, db, email)
        # The same string both times: recomputing it could cross a 30 s boundary and give a new, valid code.
        code = totp_code(secret)
        assert reset(client, second, PASSWORD, code) == (303, "/login?reset=1")
        third = await ask_for_link(client, db, email)
        status, _ = reset(client, third, NEW_PASSWORD, code)
        assert status == 422
        assert await password_is(db, user_id, PASSWORD)
