"""On a phone-sized screen (390 px), no page scrolls sideways: wide tables scroll inside their own box."""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import Browser

from app.config import Settings
from app.db import Database
from app.embedded import free_port
from tests.helpers import add_member, make_user, workspace_with
from tests.servers import web_server
from tests.workspaces.test_live import cookie_for

PHONE = {"width": 390, "height": 844}


@pytest.mark.browser
async def test_no_page_scrolls_sideways_on_a_phone(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    workspace, (owner, _) = await workspace_with(db, f"phone-{secrets.token_hex(3)}", ["member"])
    await add_member(db, workspace, await make_user(db, "someone-with-a-rather-long-name"), "viewer")
    port = free_port()
    slug = workspace.slug
    paths = [
        f"/w/{slug}", f"/w/{slug}/members", f"/w/{slug}/audit", f"/w/{slug}/settings",
        f"/w/{slug}/settings/sso", f"/w/{slug}/api-keys", f"/w/{slug}/llm", f"/w/{slug}/usage",
        f"/w/{slug}/onboarding/llm", "/workspaces", "/workspaces/new",
        "/account/security", "/account/2fa", "/account/sessions", "/account/password", "/api/v1/docs",
    ]  # fmt: skip
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    cookies = await cookie_for(db, settings, owner)
    await context.add_cookies(
        [{"name": name, "value": value, "url": f"http://127.0.0.1:{port}"} for name, value in cookies.items()]
    )
    anonymous = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    too_wide: dict[str, int] = {}
    with web_server(server_env, port=port) as base:
        page = await context.new_page()
        for path in paths:
            await page.goto(base + path)
            width = await page.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                too_wide[path] = width
        guest = await anonymous.new_page()
        for path in ("/", "/login", "/signup", "/password/forgot", "/sso"):
            await guest.goto(base + path)
            width = await guest.evaluate("document.documentElement.scrollWidth")
            if width > PHONE["width"]:
                too_wide[path] = width
    await context.close()
    await anonymous.close()
    assert too_wide == {}
