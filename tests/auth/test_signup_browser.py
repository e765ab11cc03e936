"""A new user in a real browser: sign-up → e-mail link → onboarding → dashboard."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect

from tests.browser import create_workspace, sign_up, unique_email
from tests.servers import web_server


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    with web_server(server_env) as base:
        yield base


@pytest.mark.browser
async def test_signup_to_dashboard(browser: Browser, base_url: str) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    email = unique_email("ada")
    await sign_up(page, base_url, email)
    slug = f"analytical-{secrets.token_hex(3)}"
    await create_workspace(page, "Analytical Engines", slug)
    await expect(page.locator("h1")).to_have_text("Invite your team")
    await page.click("text=Skip for now")
    await expect(page.locator("h1")).to_have_text("Connect an LLM")
    await page.click("text=Skip for now")
    await expect(page.locator("h1")).to_have_text("Add your team of agents")
    await page.get_by_role("link", name="Skip", exact=True).click()
    await expect(page.locator("h1")).to_have_text("Watch a first run")
    await page.get_by_role("link", name="Skip", exact=True).click()
    await expect(page).to_have_url(f"{base_url}/w/{slug}")
    await expect(page.locator("main h1")).to_have_text("Analytical Engines")
    await expect(page.locator(".badge").first).to_have_text("owner")
    await page.screenshot(path="/tmp/marid-dashboard.png", full_page=True)
    assert errors == []
    await context.close()
