"""Linked single sign-on identities on the account security page: listed, unlinked (never the last way in),
each change mailed to the account holder, and listed in the password-reset mail."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.main import create_app
from app.sso.models import SsoIdentity
from tests.dns_server import TestDns
from tests.helpers import http_client, log_in, post_form
from tests.sso.conftest import StartProvider
from tests.sso.flow import sso
from tests.sso.helpers import add_member, audit_actions, configure, count, make_user, make_workspace, unique_domain

pytestmark = pytest.mark.timeout(60)


async def _mails(db: Database, to: str, kind: str) -> list[str]:
    async with db.public_session() as session:
        rows = await session.scalars(
            select(OutboxMessage.body_text).where(OutboxMessage.to_address == to, OutboxMessage.kind == kind)
        )
        return list(rows)


async def test_the_security_page_lists_identities_and_never_unlinks_the_last_way_in(
    client: TestClient, db: Database, settings: Settings, dns: TestDns, providers: StartProvider
) -> None:
    domain = unique_domain()
    issuer = providers(settings.base_url + "/sso/callback", domain)
    workspace = await make_workspace(db, await make_user(db, "owner"), "acme")
    await configure(db, settings, workspace, issuer, domain, dns=dns)
    login = f"newbie{secrets.token_hex(3)}"
    assert sso(client, workspace.slug, login, page="/sso").status_code == 303  # a new, password-less account

    page = client.get("/account/security").text
    assert issuer in page and workspace.name in page and f"{login}@{domain}" in page
    assert "created your account through single sign-on" in page and "last used" in page
    async with db.public_session() as session:
        identity = await session.scalar(select(SsoIdentity).where(SsoIdentity.issuer == issuer))
    assert identity is not None

    refused = post_form(client, "/account/security", f"/account/identities/{identity.id}/unlink")
    assert refused.status_code == 409
    assert "This is the only way into your account" in refused.text
    assert await count(db, SsoIdentity, SsoIdentity.id == identity.id) == 1
    assert await _mails(db, f"{login}@{domain}", "sso-identity-unlinked") == []


async def test_unlinking_mails_the_account_holder_and_only_works_on_ones_own_identities(
    db: Database, settings: Settings, providers: StartProvider
) -> None:
    issuer = providers(settings.base_url + "/sso/callback", unique_domain())
    workspace = await make_workspace(db, await make_user(db, "owner"), "links")
    await configure(db, settings, workspace, issuer, "")
    person, other = await make_user(db, "person"), await make_user(db, "other")
    await add_member(db, workspace, person, "member")
    with http_client(create_app(settings)) as browser:
        log_in(browser, person.email)
        # Signed in, the person starts single sign-on themselves: an explicit link, mailed to them.
        assert sso(browser, workspace.slug, f"p{secrets.token_hex(3)}").status_code == 303
        [linked_mail] = await _mails(db, person.email, "sso-identity-linked")
        assert issuer in linked_mail and workspace.name in linked_mail
        async with db.public_session() as session:
            identity = await session.scalar(select(SsoIdentity).where(SsoIdentity.user_id == person.id))
        assert identity is not None and identity.link_method == "signed_in"

    with http_client(create_app(settings)) as stranger:
        log_in(stranger, other.email)
        answer = post_form(stranger, "/account/security", f"/account/identities/{identity.id}/unlink")
        assert answer.status_code == 404
    assert await count(db, SsoIdentity, SsoIdentity.id == identity.id) == 1

    with http_client(create_app(settings)) as browser:
        log_in(browser, person.email)
        done = post_form(browser, "/account/security", f"/account/identities/{identity.id}/unlink")
        assert done.status_code == 303
        page = browser.get("/account/security").text
        assert f"Unlinked {issuer}." in page and f'data-identity="{identity.id}"' not in page
    assert await count(db, SsoIdentity, SsoIdentity.id == identity.id) == 0
    [unlinked_mail] = await _mails(db, person.email, "sso-identity-unlinked")
    assert issuer in unlinked_mail
    assert ("sso.identity_unlinked", {"issuer": issuer}) in await audit_actions(db, workspace)


async def test_the_password_reset_mail_lists_linked_identities(
    client: TestClient, db: Database, settings: Settings
) -> None:
    person = await make_user(db, "person")
    workspace = await make_workspace(db, person, "resets")
    issuer = f"https://idp-{secrets.token_hex(3)}.example.com"
    async with db.public_session() as session:
        session.add(
            SsoIdentity(
                issuer=issuer, subject="s", user_id=person.id, workspace_id=workspace.id, email_at_link=person.email
            )
        )
    answer = post_form(client, "/password/forgot", "/password/forgot", {"email": person.email})
    assert answer.status_code == 303
    [mail] = await _mails(db, person.email, "password-reset")
    assert f"- {issuer} (workspace {workspace.name}, as {person.email})" in mail
    assert "Unlink it on your account's Security page" in mail
