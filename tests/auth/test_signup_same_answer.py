"""Sign-up answers the same for a new address and for one that already has an account (issue 8, defect 8).

The attack: sign-up answered a taken address with a 303 and no session in ~9 ms, a new one with a session in
~190 ms (the password hashing), so anyone could tell who has an account. Now both get the same status,
redirect, cookies (names and attributes; values are random) and page, in similar time, and the owner of the
taken address is mailed instead.
"""

from __future__ import annotations

import re
import secrets
import time
from http.cookies import SimpleCookie

from httpx2 import Response
from starlette.testclient import TestClient

from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.main import create_app
from tests.helpers import STRONG_PASSWORD, count, csrf_of, http_client, make_user


def _cookies(response: Response) -> list[tuple[str, list[tuple[str, str]]]]:
    """Each Set-Cookie as (name, sorted attributes), without the value (random either way)."""
    shapes = []
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        for name, morsel in cookie.items():
            attributes = sorted((key, str(value)) for key, value in morsel.items() if value)
            shapes.append((name, attributes))
    return sorted(shapes)


def _sign_up(client: TestClient, email: str) -> tuple[Response, float]:
    token = csrf_of(client.get("/signup").text)
    form = {"csrf_token": token, "email": email, "password": STRONG_PASSWORD, "display_name": "Sam"}
    started = time.perf_counter()
    response = client.post("/signup", data=form)
    return response, time.perf_counter() - started


def _page(client: TestClient, response: Response) -> tuple[int, str]:
    page = client.get(response.headers["location"])
    return page.status_code, re.sub(r'value="[A-Za-z0-9_-]{43}"', 'value="TOKEN"', page.text).replace(
        client.cookies.get("marid_csrf") or "?", "TOKEN"
    )


async def test_a_taken_address_gets_the_same_answer_in_similar_time(settings: Settings, db: Database) -> None:
    owner = await make_user(db, f"taken-{secrets.token_hex(3)}")
    taken_times, new_times = [], []
    for round_ in range(3):
        fresh = f"fresh-{round_}-{secrets.token_hex(3)}@example.com"
        with http_client(create_app(settings)) as stranger, http_client(create_app(settings)) as newcomer:
            taken, taken_time = _sign_up(stranger, owner.email)
            new, new_time = _sign_up(newcomer, fresh)
            taken_times.append(taken_time)
            new_times.append(new_time)
            assert taken.status_code == new.status_code == 303
            assert taken.headers["location"] == new.headers["location"]
            assert _cookies(taken) == _cookies(new)
            assert settings.session_cookie not in stranger.cookies and settings.session_cookie not in newcomer.cookies
            assert _page(stranger, taken) == _page(newcomer, new)
        assert await count(db, User, User.email == fresh) == 1
    # Both hash the password: the taken address is not answered in a fraction of the time.
    assert min(taken_times) > 0.5 * min(new_times), (taken_times, new_times)
    assert await count(db, User, User.email == owner.email) == 1
    mails = await count(
        db, OutboxMessage, OutboxMessage.to_address == owner.email, OutboxMessage.kind == "already-registered"
    )
    assert mails == 3


async def test_the_confirmation_link_signs_in_the_browser_that_signed_up(settings: Settings, db: Database) -> None:
    email = f"journey-{secrets.token_hex(3)}@example.com"
    with http_client(create_app(settings)) as browser:
        response, _ = _sign_up(browser, email)
        notice = browser.get(response.headers["location"])
        assert notice.status_code == 200 and "Check your inbox" in notice.text
        link = await _link(db, email)
        # Opened elsewhere (another browser), the link confirms the address but signs nobody in.
        with http_client(create_app(settings)) as elsewhere:
            confirmed = elsewhere.get(link)
            assert confirmed.status_code == 303 and confirmed.headers["location"].startswith("/login?verified=1")
            assert settings.session_cookie not in elsewhere.cookies
    with http_client(create_app(settings)) as browser:
        email = f"journey2-{secrets.token_hex(3)}@example.com"
        response, _ = _sign_up(browser, email)
        confirmed = browser.get(await _link(db, email))
        assert confirmed.status_code == 303 and confirmed.headers["location"] == "/onboarding"
        assert browser.get("/onboarding").status_code == 200
        # Used once: a second visit of the link does not sign in again.
        browser.cookies.delete(settings.session_cookie)
        again = browser.get(await _link(db, email))
        assert again.headers["location"].startswith("/login?verified=1")


async def _link(db: Database, email: str) -> str:
    from sqlalchemy import select

    async with db.public_session() as session:
        body = await session.scalar(
            select(OutboxMessage.body_text)
            .where(OutboxMessage.to_address == email, OutboxMessage.kind == "verify-email")
            .order_by(OutboxMessage.id.desc())
        )
    assert body
    match = re.search(r"https?://[^/\s]+(/verify-email/\S+)", body)
    assert match
    return match.group(1)
