"""In a real browser: an admin creates a service key, sees it once, copies it; afterwards only its prefix shows."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from app.apikeys.models import ApiKey
from app.db import Database
from app.security.tokens import token_hash
from tests.browser import confirm, log_in
from tests.helpers import make_user, make_workspace
from tests.members.helpers import live_server


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    with live_server(server_env) as base:
        yield base


@pytest.mark.browser
async def test_an_admin_creates_a_service_key_and_sees_it_once(browser: Browser, base_url: str, db: Database) -> None:
    admin = await make_user(db, "keyadmin")
    workspace = await make_workspace(db, admin, "browserkeys")
    context = await browser.new_context(permissions=["clipboard-read", "clipboard-write"])
    page = await context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: dialog.accept())
    await log_in(page, base_url, admin.email)
    await expect(page).not_to_have_url(re.compile(r"/login"))

    await page.goto(f"{base_url}/w/{workspace.slug}")
    await page.click("nav.sidebar >> text=API keys")
    await expect(page.locator("h1")).to_have_text("API keys")
    await page.fill("#f-name", "Nightly export")
    await page.check("#f-kind-service")
    await page.select_option("#f-scope", "write")
    await page.select_option("#f-expires", "365")
    await page.click("#new-key button[type=submit]")

    await expect(page.locator("h1")).to_have_text("Copy your new key")
    token = (await page.locator("#new-token").inner_text()).strip()
    assert re.fullmatch(r"marid_sk_[0-9A-Za-z]{38}", token), token
    await page.click("#copy-token")
    await expect(page.locator(".toast", has_text="Copied")).to_be_visible()
    assert await page.evaluate("navigator.clipboard.readText()") == token
    async with db.public_session() as session:
        key = await session.scalar(select(ApiKey).where(ApiKey.workspace_id == workspace.id))
    assert key is not None and key.token_hash == token_hash(token)
    assert (key.kind, key.scope, key.user_id, key.created_by) == ("service", "write", None, admin.id)

    await page.click("#done")
    row = page.locator(f"#service-keys tr[data-key='{key.lookup_id}']")
    await expect(row).to_contain_text(f"marid_sk_{key.lookup_id}…")
    await expect(row).to_contain_text("Nightly export")
    await expect(row).to_contain_text("Active")
    await page.reload()
    assert token not in await page.content() and token[17:] not in await page.content()

    await row.locator("button", has_text="Revoke").click()
    await confirm(page)
    await expect(page.locator(f"#service-keys tr[data-key='{key.lookup_id}']")).to_contain_text("Revoked")
    await expect(row.locator("button", has_text="Revoke")).to_have_count(0)
    assert problems == []
    await context.close()
