"""What "Require single sign-on" and managed accounts do, over HTTP: the preview of whom they affect (an htmx
fragment, before saving), the step-up bound to one session, and links made through a domain lapsing with it."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.sso.models import SsoDomain, SsoStepUp
from tests.dns_server import TestDns
from tests.helpers import http_client, log_in, post_form
from tests.sso.conftest import StartProvider
from tests.sso.flow import sso
from tests.sso.helpers import add_member, configure, count, make_user, make_workspace, unique_domain

pytestmark = pytest.mark.timeout(60)


async def test_the_settings_page_previews_whom_requiring_sso_affects_before_saving(
    client: TestClient, db: Database, settings: Settings, dns: TestDns
) -> None:
    domain = unique_domain()
    owner = await make_user(db, "owner", email=f"owner-{secrets.token_hex(3)}@{domain}")
    workspace = await make_workspace(db, owner, "preview")
    kim = await make_user(db, "kim", email=f"kim-{secrets.token_hex(3)}@{domain}")
    guest = await make_user(db, "guest")
    await add_member(db, workspace, kim, "member")
    await add_member(db, workspace, guest, "viewer")
    await configure(db, settings, workspace, "https://login.example.com", domain, dns=dns)
    log_in(client, owner.email)
    page = f"/w/{workspace.slug}/settings/sso"
    html = client.get(page).text
    assert 'hx-post="/w/' in html and "/settings/sso/preview" in html  # the switches ask for the preview

    def preview(**flags: str) -> str:
        answer = post_form(client, page, page + "/preview", {"enabled": "on", **flags}, **{"HX-Request": "true"})
        assert answer.status_code == 200
        assert answer.text.lstrip().startswith('<div id="sso-preview"')
        return answer.text

    assert kim.email not in preview()
    step_up = preview(enforce_sso="on")
    assert kim.email in step_up and guest.email in step_up and owner.email not in step_up
    assert 'id="sso-preview-managed"' not in step_up
    managed = preview(enforce_sso="on", managed_accounts="on")
    managed_list = managed.split('id="sso-preview-managed"', 1)[1]
    assert kim.email in managed_list and guest.email not in managed_list and owner.email not in managed_list
    assert 'id="f-confirm_managed"' in managed
    # A preview changes nothing.
    assert client.get(page).text.count("checked") == html.count("checked")


async def test_the_step_up_belongs_to_the_session_that_did_it(
    db: Database, settings: Settings, providers: StartProvider
) -> None:
    issuer = providers(settings.base_url + "/sso/callback", unique_domain())
    workspace = await make_workspace(db, await make_user(db, "owner"), "bound")
    person = await make_user(db, "person")
    await add_member(db, workspace, person, "member")
    await configure(db, settings, workspace, issuer, "", enforce_sso="on")
    login = f"p{secrets.token_hex(3)}"
    with http_client(create_app(settings)) as first, http_client(create_app(settings)) as second:
        log_in(first, person.email)
        assert sso(first, workspace.slug, login).headers["location"] == f"/w/{workspace.slug}"
        assert first.get(f"/w/{workspace.slug}").status_code == 200
        # The same person's other browser has not done it.
        log_in(second, person.email)
        assert second.get(f"/w/{workspace.slug}").headers["location"].startswith("/sso?workspace=")
        # Signing out ends the step-up with the session; the next session is asked again.
        post_form(first, f"/w/{workspace.slug}", "/logout")
        log_in(first, person.email)
        assert first.get(f"/w/{workspace.slug}").headers["location"].startswith("/sso?workspace=")
    assert await count(db, SsoStepUp, SsoStepUp.workspace_id == workspace.id) == 0


async def test_a_link_made_through_a_domain_lapses_with_the_domain(
    client: TestClient, db: Database, settings: Settings, dns: TestDns, providers: StartProvider
) -> None:
    domain = unique_domain()
    issuer = providers(settings.base_url + "/sso/callback", domain)
    owner = await make_user(db, "owner")
    workspace = await make_workspace(db, owner, "lapse")
    await configure(db, settings, workspace, issuer, domain, dns=dns)
    login = f"n{secrets.token_hex(3)}"
    assert sso(client, workspace.slug, login).status_code == 303
    client.cookies.clear()

    async with db.public_session() as session:
        row = await session.scalar(select(SsoDomain).where(SsoDomain.workspace_id == workspace.id))
    assert row is not None
    with http_client(create_app(settings)) as admin:
        log_in(admin, owner.email)
        page = f"/w/{workspace.slug}/settings/sso"
        assert post_form(admin, page, f"{page}/domains/{row.id}/remove").status_code == 303
    refused = sso(client, workspace.slug, login)
    assert refused.status_code == 403 and f"has not proven that it owns {domain}" in refused.text
    assert settings.session_cookie not in client.cookies

    # Proven again, the same identity signs in again.
    await configure(db, settings, workspace, issuer, domain, dns=dns)
    assert sso(client, workspace.slug, login).status_code == 303
