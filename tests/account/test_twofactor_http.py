"""2FA over HTTP: enrolment pages, fresh proof for turning it off or replacing codes, other sessions ended,
and workspaces that require 2FA sending members to enrolment and back."""

from __future__ import annotations

import html
import re
import secrets
from datetime import timedelta

from sqlalchemy import select, update
from starlette.testclient import TestClient

from app.account.models import AccountEvent
from app.audit.models import AuditEvent
from app.auth.models import UserSession
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.tenants.models import Workspace
from app.workspaces.service import create_workspace
from tests.account.helpers import (
    FIREFOX,
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


def enrol(client: TestClient, required: str = "") -> tuple[str, list[str], str]:
    """Start and confirm enrolment through the pages; returns the secret, the recovery codes and the codes page."""
    page = "/account/2fa" + (f"?required={required}" if required else "")
    started = post_form(client, page, "/account/2fa/start", {"required": required})
    assert started.status_code == 303, started.text
    enrolment = client.get(started.headers["location"])
    assert '<svg xmlns="http://www.w3.org/2000/svg"' in enrolment.text
    secret_match = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', enrolment.text)
    assert secret_match
    secret = secret_match.group(1).replace(" ", "")
    token = csrf_of(enrolment.text)
    confirmed = client.post(
        "/account/2fa/confirm", data={"csrf_token": token, "code": totp_code(secret), "required": required}
    )
    assert confirmed.status_code == 200, confirmed.text
    codes = re.findall(r"<li><code>([0-9a-z-]{19})</code></li>", confirmed.text)
    return secret, codes, confirmed.text


def qr_of(page: str) -> str:
    match = re.search(r"<svg.*?</svg>", page, re.S)
    assert match
    return match.group(0)


async def test_enrolment_turns_on_2fa_shows_ten_codes_once_and_ends_other_sessions(
    settings: Settings, db: Database
) -> None:
    email = unique_email("enrol")
    user_id = await make_user(db, email)
    with browser(settings) as client, browser(settings, FIREFOX) as other:
        sign_in(client, email)
        sign_in(other, email)
        started = post_form(client, "/account/2fa", "/account/2fa/start", {})
        page = client.get(started.headers["location"]).text
        # The QR code must pass our CSP (style-src 'self'): no style attributes, no script.
        svg = qr_of(page)
        assert "style" not in svg and "script" not in svg.lower()
        user = await load_user(db, user_id)
        assert user.totp_secret_enc is not None and user.totp_enabled_at is None
        secret = re.search(r'id="totp-secret">([A-Z2-7 ]+)<', page).group(1).replace(" ", "")  # type: ignore[union-attr]
        assert secret not in user.totp_secret_enc  # stored encrypted

        for bad in ("", "12345", "abcdef", totp_code(secret, steps_ahead=5)):
            refused = client.post("/account/2fa/confirm", data={"csrf_token": csrf_of(page), "code": bad})
            assert refused.status_code == 422 and 'class="error"' in refused.text
        assert (await load_user(db, user_id)).totp_enabled_at is None

        token = csrf_of(page)
        # Keep the very string: recomputing it later could cross a 30 s boundary and give a new, valid code.
        confirming_code = totp_code(secret)
        confirmed = client.post("/account/2fa/confirm", data={"csrf_token": token, "code": confirming_code})
        assert confirmed.status_code == 200
        assert confirmed.headers["cache-control"] == "no-store"
        codes = re.findall(r"<li><code>([0-9a-z-]{19})</code></li>", confirmed.text)
        assert len(codes) == 10 and len(set(codes)) == 10
        assert 'download="marid-recovery-codes.txt"' in confirmed.text
        assert (await load_user(db, user_id)).has_2fa
        assert await unused_codes(db, user_id) == 10
        # Never shown again.
        assert not any(code in client.get("/account/2fa").text for code in codes)
        assert "10 of 10 recovery codes left" in client.get("/account/security").text
        assert is_signed_in(client) and not is_signed_in(other)

        # The code used to confirm cannot be used again (to sign in, say).
        replay = post_form(other, "/login", "/login", {"email": email, "password": PASSWORD})
        assert replay.headers["location"] == "/login/2fa"
        refused = post_form(other, "/login/2fa", "/login/2fa", {"code": confirming_code})
        assert refused.status_code == 401


async def test_turning_2fa_off_needs_the_password_or_a_code(settings: Settings, db: Database) -> None:
    email = unique_email("disable")
    user_id = await make_user(db, email)
    secret, codes = await turn_on_2fa(db, settings, user_id)
    with browser(settings) as client, browser(settings, FIREFOX) as other:
        signing_in_code = totp_code(secret)
        sign_in(client, email, code=signing_in_code)
        sign_in(other, email, code=codes[0])
        for proof, status in (
            ({}, 422),
            ({"password": "not my password at all"}, 401),
            ({"code": "000000"}, 401),
            ({"code": codes[0]}, 401),  # already used to sign in
            ({"code": signing_in_code}, 401),  # already used to sign in
        ):
            response = post_form(client, "/account/2fa", "/account/2fa/disable", proof)
            assert response.status_code == status, (proof, response.text)
            assert "Nothing was changed" in response.text or status == 422
            assert (await load_user(db, user_id)).has_2fa
        assert is_signed_in(other)

        off = post_form(client, "/account/2fa", "/account/2fa/disable", {"password": PASSWORD})
        assert off.status_code == 303
        assert "Two-factor authentication is off" in client.get(off.headers["location"]).text
        user = await load_user(db, user_id)
        assert not user.has_2fa and user.totp_secret_enc is None
        assert await unused_codes(db, user_id) == 0
        assert not is_signed_in(other) and is_signed_in(client)


async def test_new_recovery_codes_need_a_fresh_proof_and_replace_the_old_ones(settings: Settings, db: Database) -> None:
    email = unique_email("regen")
    user_id = await make_user(db, email)
    secret, old_codes = await turn_on_2fa(db, settings, user_id)
    with browser(settings) as client:
        sign_in(client, email, code=totp_code(secret))
        refused = post_form(client, "/account/2fa", "/account/2fa/recovery-codes", {"password": "wrong password!!"})
        assert refused.status_code == 401
        # A code one step ahead is valid (clock drift) and not a replay of the one used to sign in.
        fresh = post_form(client, "/account/2fa", "/account/2fa/recovery-codes", {"code": totp_code(secret, 1)})
        assert fresh.status_code == 200
        new_codes = re.findall(r"<li><code>([0-9a-z-]{19})</code></li>", fresh.text)
        assert len(new_codes) == 10 and not set(new_codes) & set(old_codes)
        assert await unused_codes(db, user_id) == 10
    with browser(settings) as later:
        assert post_form(later, "/login", "/login", {"email": email, "password": PASSWORD}).status_code == 303
        assert post_form(later, "/login/2fa", "/login/2fa", {"code": old_codes[1]}).status_code == 401
        assert post_form(later, "/login/2fa", "/login/2fa", {"code": new_codes[1]}).status_code == 303
        assert is_signed_in(later)


async def test_workspace_requiring_2fa_sends_members_to_enrolment_and_back(settings: Settings, db: Database) -> None:
    email = unique_email("required")
    user_id = await make_user(db, email)
    slug = f"strict-{secrets.token_hex(3)}"
    async with db.public_session() as session:
        workspace = await create_workspace(session, name="Strict & Co", slug=slug, owner_id=user_id)
        workspace_id = workspace.id
    with browser(settings) as client:
        sign_in(client, email)
        assert client.get(f"/w/{slug}").status_code == 200
        async with db.public_session() as session:
            await session.execute(update(Workspace).where(Workspace.id == workspace_id).values(require_2fa=True))
        sent = client.get(f"/w/{slug}")
        assert sent.status_code == 303 and sent.headers["location"] == f"/account/2fa?required={slug}"
        notice = client.get(sent.headers["location"])
        assert "Strict &amp; Co</strong> requires every member to use two-factor authentication" in notice.text
        # Only workspaces the user belongs to are named.
        assert "requires every member" not in client.get("/account/2fa?required=someone-elses").text

        _secret, codes, codes_page = enrol(client, required=slug)
        assert len(codes) == 10
        assert f'href="/w/{slug}"' in codes_page and html.escape("continue to Strict & Co") in codes_page
        assert client.get(f"/w/{slug}").status_code == 200
    # An account event: in the person's own security log, not in the workspace's audit log.
    async with db.public_session() as session:
        mine = list(await session.scalars(select(AccountEvent.action).where(AccountEvent.user_id == user_id)))
    assert "auth.2fa_enabled" in mine
    async with db.tenant_session(workspace_id) as session:
        actions = list(await session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == str(user_id))))
    assert "auth.2fa_enabled" not in actions


async def test_starting_enrolment_long_after_sign_in_needs_the_password(settings: Settings, db: Database) -> None:
    email = unique_email("stale")
    user_id = await make_user(db, email)
    with browser(settings) as client:
        sign_in(client, email)
        async with db.public_session() as session:
            await session.execute(
                update(UserSession)
                .where(UserSession.user_id == user_id)
                .values(authenticated_at=now() - timedelta(minutes=settings.reauth_minutes + 1))
            )
        assert 'id="f-password"' in client.get("/account/2fa").text
        missing = post_form(client, "/account/2fa", "/account/2fa/start", {})
        assert missing.status_code == 422
        wrong = post_form(client, "/account/2fa", "/account/2fa/start", {"password": "not the password, sorry"})
        assert wrong.status_code == 401 and "Nothing was changed" in wrong.text
        assert (await load_user(db, user_id)).totp_secret_enc is None
        right = post_form(client, "/account/2fa", "/account/2fa/start", {"password": PASSWORD})
        assert right.status_code == 303
        assert (await load_user(db, user_id)).totp_secret_enc is not None
        # Proven just now: the page no longer asks.
        assert 'id="f-password"' not in client.get("/account/2fa").text


async def test_code_guessing_is_rate_limited(settings: Settings, db: Database) -> None:
    email = unique_email("guess")
    user_id = await make_user(db, email)
    secret, _codes = await turn_on_2fa(db, settings, user_id)
    with browser(settings) as client:
        sign_in(client, email, code=totp_code(secret))
        statuses = [
            post_form(client, "/account/2fa", "/account/2fa/disable", {"code": "000000"}).status_code for _ in range(11)
        ]
        assert statuses[:10] == [401] * 10 and statuses[10] == 429
        blocked = post_form(client, "/account/2fa", "/account/2fa/disable", {"password": PASSWORD})
        assert blocked.status_code == 429 and "Too many wrong passwords or codes" in blocked.text
        assert (await load_user(db, user_id)).has_2fa
