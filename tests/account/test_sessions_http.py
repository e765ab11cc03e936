"""The sessions page: every browser listed with a friendly name; revoking one, or all the others, makes
their cookies anonymous at once."""

from __future__ import annotations

import re

from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from tests.account.helpers import (
    FIREFOX,
    SAFARI_IOS,
    browser,
    csrf_of,
    is_signed_in,
    make_user,
    sign_in,
    unique_email,
)


def session_ids(page: str) -> dict[str, str]:
    """Device name -> session id, from the sessions table."""
    rows = re.findall(r'<tr data-session="([0-9a-f-]{36})".*?<span title="[^"]*">([^<]+)</span>', page, re.S)
    return {device: session_id for session_id, device in rows}


def post(client: TestClient, action: str) -> int:
    token = csrf_of(client.get("/account/sessions").text)
    return client.post(action, data={"csrf_token": token}).status_code


async def test_revoke_one_session_then_sign_out_everywhere_else(settings: Settings, db: Database) -> None:
    email = unique_email("sessions")
    await make_user(db, email)
    with browser(settings) as mac, browser(settings, FIREFOX) as linux, browser(settings, SAFARI_IOS) as phone:
        for client in (mac, linux, phone):
            assert sign_in(client, email).status_code == 303
        page = mac.get("/account/sessions")
        assert page.status_code == 200
        devices = session_ids(page.text)
        assert set(devices) == {"Chrome 126 on macOS", "Firefox 128 on Linux", "Safari 17 on iOS"}
        assert page.text.count("This browser") == 1
        assert re.search(r"Chrome 126 on macOS</span>\s*<span class=\"badge ok\">This browser", page.text)
        assert "just now" in page.text and " UTC" in page.text

        assert post(mac, f"/account/sessions/{devices['Firefox 128 on Linux']}/revoke") == 303
        assert not is_signed_in(linux)
        assert is_signed_in(phone) and is_signed_in(mac)
        # Revoking it again is harmless and says so.
        assert post(mac, f"/account/sessions/{devices['Firefox 128 on Linux']}/revoke") == 303
        assert "already ended" in mac.get("/account/sessions").text

        assert post(mac, "/account/sessions/revoke-others") == 303
        assert not is_signed_in(phone)
        assert is_signed_in(mac)
        assert set(session_ids(mac.get("/account/sessions").text)) == {"Chrome 126 on macOS"}


async def test_another_accounts_session_cannot_be_revoked(settings: Settings, db: Database) -> None:
    mine, theirs = unique_email("me"), unique_email("them")
    await make_user(db, mine)
    await make_user(db, theirs)
    with browser(settings) as me, browser(settings, FIREFOX) as them:
        sign_in(me, mine)
        sign_in(them, theirs)
        their_id = next(iter(session_ids(them.get("/account/sessions").text).values()))
        assert post(me, f"/account/sessions/{their_id}/revoke") == 303
        assert is_signed_in(them)
        assert post(me, "/account/sessions/revoke-others") == 303
        assert is_signed_in(them)
        assert post(me, "/account/sessions/not-a-uuid/revoke") == 404


async def test_revoking_this_browser_signs_it_out(settings: Settings, db: Database) -> None:
    email = unique_email("self")
    await make_user(db, email)
    with browser(settings) as client:
        sign_in(client, email)
        own_id = next(iter(session_ids(client.get("/account/sessions").text).values()))
        token = csrf_of(client.get("/account/sessions").text)
        response = client.post(f"/account/sessions/{own_id}/revoke", data={"csrf_token": token})
        assert response.status_code == 303 and response.headers["location"] == "/login"
        assert not is_signed_in(client)


def test_account_pages_need_sign_in(settings: Settings) -> None:
    with browser(settings) as client:
        for path in ("/account/security", "/account/sessions", "/account/2fa"):
            response = client.get(path)
            assert response.status_code == 303 and response.headers["location"].startswith("/login?next=")
