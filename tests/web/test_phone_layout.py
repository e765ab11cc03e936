"""On a phone (390 px) no page scrolls sideways: every page of the route table, as the owner and as a guest, plus
the new-key page (a form's answer), the dev mailbox and the API reference. Wide content scrolls or wraps inside
its own box; tables become cards."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser, Page

from app.config import Settings
from app.db import Database
from app.embedded import free_port
from tests.servers import web_server
from tests.web.walk import PHONE, context_for, open_new_key_page, page_paths, team_with_everything

GUEST_PAGES = ("/", "/login", "/signup", "/password/forgot", "/sso", "/verify-email?sent=1", "/no/such/page")


async def width_of(page: Page) -> int:
    return int(await page.evaluate("document.documentElement.scrollWidth"))


@pytest.mark.browser
async def test_no_page_scrolls_sideways_on_a_phone(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    owner = team.users["owner"]
    slug = team.workspace.slug
    paths = page_paths(settings, slug, str(team.users["member"].id))
    assert f"/w/{slug}/api-keys" in paths and "/dev/mailbox" in paths and "/api/v1/docs" in paths
    too_wide: dict[str, int] = {}
    port = free_port()
    with web_server(server_env, port=port) as base:
        async with context_for(browser, db, settings, base, owner, PHONE) as context:
            page = await context.new_page()
            for path in paths:
                await page.goto(base + path)
                if (width := await width_of(page)) > PHONE["width"]:
                    too_wide[path] = width
            await open_new_key_page(page, base, slug)
            if (width := await width_of(page)) > PHONE["width"]:
                too_wide["(the new key page)"] = width
        async with context_for(browser, db, settings, base, None, PHONE) as guest_context:
            guest = await guest_context.new_page()
            for path in GUEST_PAGES:
                await guest.goto(base + path)
                if (width := await width_of(guest)) > PHONE["width"]:
                    too_wide[f"{path} (guest)"] = width
    assert too_wide == {}
    assert len(paths) >= 25, paths


@pytest.mark.browser
async def test_tables_become_cards_with_every_action_in_reach(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    slug = team.workspace.slug
    with web_server(server_env) as base:
        async with context_for(browser, db, settings, base, team.users["owner"], PHONE) as context:
            page = await context.new_page()
            await page.goto(f"{base}/w/{slug}/members")
            await page.screenshot(path="/tmp/marid-phone-members.png", full_page=True)
            row = page.locator("table.invitations tbody tr").first
            for label in ("Copy link", "Resend", "Withdraw"):
                button = row.locator("button", has_text=label)
                box = await button.bounding_box()
                assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], label
            await page.goto(f"{base}/account/sessions")
            sign_out = page.locator("#sessions button", has_text="Sign out")
            box = await sign_out.bounding_box()
            assert box is not None and box["x"] + box["width"] <= PHONE["width"]
            assert await sign_out.inner_text() == "Sign out", "never cut to “Si”"
            # The current tab of a bar that scrolls sideways is in view.
            await page.goto(f"{base}/account/password")
            current = page.locator(".subnav [aria-current]")
            box = await current.bounding_box()
            assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
            await page.goto(f"{base}/w/{slug}/audit")
            await page.screenshot(path="/tmp/marid-phone-audit.png", full_page=True)
            await page.goto(f"{base}/w/{slug}/settings")
            current = page.locator(".sidebar [aria-current]")
            box = await current.bounding_box()
            assert box is not None and 0 <= box["x"] and box["x"] + box["width"] <= PHONE["width"]
