"""Single sign-on end to end: a real OpenID provider (oidc-provider), a live Marid, a real DNS server and Chromium.

An admin sets SSO up on the settings page and proves the company's domain (a TXT record on the test DNS
server); a new person then signs in with their e-mail address at the provider and becomes a member just in
time; signing in again finds the same member; ID tokens meant for another client, or carrying another nonce,
are refused with no session; an account outside the proven domains links only when its owner signs in first;
a workspace that requires SSO asks for it when a member with a password session opens it (a step-up of the
same session); and the account page lists linked identities, with Unlink.
"""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import Browser, expect

from app.auth.models import UserSession
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.sso.models import SsoConnection, SsoDomain, SsoIdentity
from app.tenants.models import Membership
from tests.browser import STRONG_PASSWORD, log_in
from tests.dns_server import TestDns
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET, StartProvider, other_client
from tests.sso.helpers import (
    add_member,
    audit_actions,
    configure,
    count,
    make_user,
    make_workspace,
    sign_in_at_provider,
    sso_login,
    unique_domain,
    users_with_email,
)

pytestmark = pytest.mark.browser


async def test_admin_sets_up_sso_and_a_new_person_joins_just_in_time(
    browser: Browser, marid: str, start_provider: StartProvider, db: Database, settings: Settings, dns: TestDns
) -> None:
    domain = unique_domain()
    issuer = start_provider(email_domain=domain)
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner, "acme")

    admin_context = await browser.new_context()
    admin = await admin_context.new_page()
    await log_in(admin, marid, owner.email)
    await admin.goto(f"{marid}/w/{workspace.slug}/settings/sso")
    await expect(admin.locator("#sso-callback-url")).to_have_text(f"{marid}/sso/callback")
    await admin.fill("#f-issuer", issuer)
    await admin.fill("#f-client_id", CLIENT_ID)
    await admin.fill("#f-client_secret", CLIENT_SECRET)
    await admin.select_option("#f-default_role", "member")
    await admin.check("#f-enabled")
    await admin.click("#sso-test")
    await expect(admin.locator("#sso-test-result")).to_contain_text("Connection works.")
    await expect(admin.locator("#sso-test-result")).to_contain_text("PKCE")
    await admin.click("button:has-text('Save')")
    await expect(admin.locator("#sso-status .badge.ok")).to_have_text("On")
    # The secret is never shown again, not even in the (empty) password field.
    assert CLIENT_SECRET not in await admin.content()

    # The company's domain: added, its TXT record published at the DNS host, then verified.
    await admin.fill("#f-domain", domain.upper())
    await admin.click("button:has-text('Add domain')")
    row = admin.locator(f"li[id='domain-{domain}']")
    await expect(row.locator(".badge")).to_have_text("Pending")
    await expect(row.locator(".record-name")).to_have_text(f"_marid-verify.{domain}")
    value = await row.locator(".record-value").inner_text()
    assert value.startswith("marid-domain-verification=")
    await row.locator("button:has-text('Verify')").click()
    await expect(row.locator(".domain-error")).to_contain_text("Found no TXT record")
    await expect(row.locator(".badge")).to_have_text("Pending")
    dns.zone.publish_txt(f"_marid-verify.{domain}", value)
    await row.locator("button:has-text('Verify')").click()
    await expect(row.locator(".badge")).to_have_text("Verified")
    await expect(row.locator("button:has-text('Verify')")).to_have_count(0)
    await admin_context.close()
    assert await count(db, SsoDomain, SsoDomain.domain == domain, SsoDomain.verified_at.is_not(None)) == 1

    login = f"alice{secrets.token_hex(3)}"
    email = f"{login}@{domain}"
    context, page = await sso_login(browser, marid, email, login)
    assert page.url == f"{marid}/w/{workspace.slug}"
    await expect(page.locator("h1")).to_have_text(workspace.name)
    await expect(page.locator(".page-head .badge")).to_have_text("member")
    await context.close()

    [user] = await users_with_email(db, email)
    assert user is not None and user.password_hash is None and user.email_verified_at is not None
    assert await count(db, Membership, Membership.workspace_id == workspace.id, Membership.user_id == user.id) == 1
    assert await count(db, SsoIdentity, SsoIdentity.issuer == issuer, SsoIdentity.subject == login) == 1
    actions = [action for action, _ in await audit_actions(db, workspace)]
    expected = {"sso.tested", "sso.configured", "sso.domain_added", "sso.domain_verify_failed", "sso.domain_verified"}
    assert expected | {"sso.member_provisioned", "sso.identity_linked", "sso.login"} <= set(actions)


async def test_signing_in_again_finds_the_same_member(
    browser: Browser, marid: str, start_provider: StartProvider, db: Database, settings: Settings, dns: TestDns
) -> None:
    domain = unique_domain()
    issuer = start_provider(email_domain=domain)
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner, "again")
    await configure(db, settings, workspace, issuer, domain, dns=dns, default_role="viewer")
    login = f"bob{secrets.token_hex(3)}"

    context, page = await sso_login(browser, marid, workspace.slug, login)
    await expect(page.locator(".page-head .badge")).to_have_text("viewer")
    await page.click("#user-menu-button")
    await page.click("#sign-out")
    await page.wait_for_url(f"{marid}/login")
    await context.close()

    context, page = await sso_login(browser, marid, f"{login}@{domain}", login)
    assert page.url == f"{marid}/w/{workspace.slug}"
    await expect(page.locator(".page-head .badge")).to_have_text("viewer")
    await context.close()

    email = f"{login}@{domain}"
    users = await users_with_email(db, email)
    assert len(users) == 1
    assert await count(db, SsoIdentity, SsoIdentity.issuer == issuer) == 1
    assert await count(db, Membership, Membership.workspace_id == workspace.id) == 2  # the owner and bob
    assert await count(db, UserSession, UserSession.user_id == users[0].id) == 1  # the first one signed out
    actions = [action for action, _ in await audit_actions(db, workspace)]
    assert actions.count("sso.login") == 2
    assert actions.count("sso.member_provisioned") == 1


@pytest.mark.parametrize(
    ("fault", "claim"),
    [
        ({"IDP_ID_TOKEN_AUD": "other-rp"}, "aud"),
        # authlib's defaults would accept this one (azp names us); Marid checks aud itself.
        ({"IDP_ID_TOKEN_AUD": "other-rp", "IDP_ID_TOKEN_AZP": CLIENT_ID}, "aud"),
        ({"IDP_ID_TOKEN_NONCE": "a-nonce-from-another-sign-in"}, "nonce"),
    ],
    ids=["wrong-audience", "wrong-audience-with-our-azp", "wrong-nonce"],
)
async def test_a_bad_id_token_is_refused_with_no_session(
    browser: Browser,
    marid: str,
    start_provider: StartProvider,
    db: Database,
    settings: Settings,
    fault: dict[str, str],
    claim: str,
) -> None:
    domain = unique_domain()
    issuer = start_provider(email_domain=domain, IDP_EXTRA_CLIENTS=other_client(f"{marid}/sso/callback"), **fault)
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner, "strict")
    await configure(db, settings, workspace, issuer, domain)
    login = f"mallory{secrets.token_hex(3)}"

    context, page = await sso_login(browser, marid, workspace.slug, login)
    assert page.url.startswith(f"{marid}/sso/callback")
    await expect(page.locator("h1")).to_have_text("Single sign-on failed")
    await expect(page.locator("#sso-error")).to_contain_text("The ID token was refused")
    await expect(page.locator("#sso-error")).to_contain_text(f"'{claim}'")
    assert not [c for c in await context.cookies() if c["name"] in (settings.session_cookie, "marid_sso")]
    # Nothing opens for this browser either.
    await page.goto(f"{marid}/w/{workspace.slug}")
    assert page.url.startswith(f"{marid}/login")
    await context.close()

    assert await users_with_email(db, f"{login}@{domain}") == []
    assert await count(db, SsoIdentity, SsoIdentity.issuer == issuer) == 0
    assert await count(db, Membership, Membership.workspace_id == workspace.id) == 1
    failures = [details for action, details in await audit_actions(db, workspace) if action == "sso.login_failed"]
    assert [details["reason"] for details in failures] == ["invalid_id_token"]
    assert await count(db, SsoConnection, SsoConnection.workspace_id == workspace.id) == 1


async def test_an_account_outside_the_proven_domains_links_only_after_signing_in_with_its_password(
    browser: Browser, marid: str, start_provider: StartProvider, db: Database, settings: Settings
) -> None:
    domain = unique_domain()  # the provider's addresses; the workspace never proved this domain
    issuer = start_provider(email_domain=domain)
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner, "linking")
    await configure(db, settings, workspace, issuer, "")
    login = f"grace{secrets.token_hex(3)}"
    existing = await make_user(db, "grace", email=f"{login}@{domain}")
    await add_member(db, workspace, existing, "member")

    # The provider vouching for the address is not enough to enter someone's account.
    context, page = await sso_login(browser, marid, workspace.slug, login)
    await expect(page.locator("#sso-error")).to_contain_text(f"has not proven that it owns {domain}")
    assert not [c for c in await context.cookies() if c["name"] == settings.session_cookie]

    # The page says how: sign in to the account first, then Continue with SSO links it.
    await page.click("#sso-link-first")
    await page.fill("#f-email", existing.email)
    await page.fill("#f-password", STRONG_PASSWORD)
    await page.click("main button[type=submit]")
    await page.wait_for_url(f"{marid}/sso?workspace={workspace.slug}")
    await expect(page.locator(".alert")).to_contain_text(existing.email)
    await page.click("#sso-submit")
    await page.wait_for_url(f"{marid}/w/{workspace.slug}")  # the provider remembers this browser's sign-in
    await context.close()

    assert await count(db, SsoIdentity, SsoIdentity.issuer == issuer, SsoIdentity.user_id == existing.id) == 1
    assert len(await users_with_email(db, existing.email)) == 1
    events = await audit_actions(db, workspace)
    assert [d["reason"] for a, d in events if a == "sso.login_failed"] == ["domain_not_verified"]
    assert [(d["existing_account"], d["how"]) for a, d in events if a == "sso.identity_linked"] == [(True, "signed_in")]
    assert await count(db, OutboxMessage, OutboxMessage.to_address == existing.email,
                       OutboxMessage.kind == "sso-identity-linked") == 1  # fmt: skip


async def test_a_member_with_a_password_session_steps_up_into_the_workspace_that_requires_sso(
    browser: Browser, marid: str, start_provider: StartProvider, db: Database, settings: Settings
) -> None:
    issuer = start_provider(email_domain=unique_domain())
    person = await make_user(db, "person")
    plain = await make_workspace(db, await make_user(db, "boss"), "plain")
    strict = await make_workspace(db, await make_user(db, "owner"), "strict")
    for workspace in (plain, strict):
        await add_member(db, workspace, person, "member")
    await configure(db, settings, strict, issuer, "", enforce_sso="on")

    context = await browser.new_context()
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await log_in(page, marid, person.email)
    await page.wait_for_url(f"{marid}/workspaces")
    await page.goto(f"{marid}/w/{plain.slug}/members")
    await expect(page.locator("h1")).to_have_text("Members")
    cookie = [c["value"] for c in await context.cookies() if c["name"] == settings.session_cookie]

    await page.goto(f"{marid}/w/{strict.slug}/members")
    assert page.url.startswith(f"{marid}/sso?workspace={strict.slug}")
    await expect(page.locator("#sso-step-up")).to_contain_text(f"“{strict.name}” requires single sign-on")
    await page.click("#sso-submit")
    await sign_in_at_provider(page, f"person{secrets.token_hex(3)}")
    await page.wait_for_url(f"{marid}/w/{strict.slug}/members")
    await expect(page.locator("h1")).to_have_text("Members")
    # The same session, stepped up: the other workspace still opens, nothing asked again.
    assert [c["value"] for c in await context.cookies() if c["name"] == settings.session_cookie] == cookie
    await page.goto(f"{marid}/w/{plain.slug}")
    await expect(page.locator("h1")).to_have_text(plain.name)
    await page.goto(f"{marid}/w/{strict.slug}")
    await expect(page.locator("h1")).to_have_text(strict.name)

    # The account page lists the identity the step-up linked; unlinking it asks for SSO again.
    await page.goto(f"{marid}/account/security")
    identity = page.locator("#sso-identities .identity")
    await expect(identity).to_contain_text(issuer)
    await expect(identity).to_contain_text(strict.name)
    await expect(identity).to_contain_text("linked by you, signed in to Marid")
    await identity.locator("button:has-text('Unlink')").click()
    await page.locator("#confirm-dialog #confirm-ok").click()
    await expect(page.locator("#toasts .toast")).to_contain_text("Unlinked")
    await expect(page.locator("#sso-identities .identity")).to_have_count(0)
    await page.goto(f"{marid}/w/{strict.slug}")
    assert page.url.startswith(f"{marid}/sso?workspace={strict.slug}")
    await context.close()
    assert await count(db, UserSession, UserSession.user_id == person.id) == 1
    kinds = [
        kind
        for kind in ("sso-identity-linked", "sso-identity-unlinked")
        if await count(db, OutboxMessage, OutboxMessage.to_address == person.email, OutboxMessage.kind == kind)
    ]
    assert kinds == ["sso-identity-linked", "sso-identity-unlinked"]
