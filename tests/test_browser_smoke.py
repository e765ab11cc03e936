"""The start page renders in a real Chromium under our CSP, with no console errors."""

from __future__ import annotations

import pytest
from playwright.async_api import Browser

from tests.servers import web_server


@pytest.mark.browser
async def test_start_page_in_chromium(browser: Browser, server_env: dict[str, str]) -> None:
    with web_server(server_env) as base:
        page = await browser.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        await page.goto(base + "/")
        assert await page.title() == "Welcome · Marid"
        assert await page.locator("h1").inner_text() == "Autonomous agents for your team"
        # The stylesheet loaded: the CSP allows our own static files.
        assert await page.evaluate("getComputedStyle(document.body).margin") == "0px"
        assert problems == []
        await page.close()
