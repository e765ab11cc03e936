"""The start page renders in a real Chromium under our CSP, with no console errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.servers import web_server


@pytest.mark.browser
def test_start_page_in_chromium(browser: Any, server_env: dict[str, str]) -> None:
    with web_server(server_env) as base:
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
        page.goto(base + "/")
        assert page.title() == "Welcome · Marid"
        assert page.locator("h1").inner_text() == "Autonomous agents for your team"
        # The stylesheet loaded (the CSP allows our own static files).
        assert page.evaluate("getComputedStyle(document.body).margin") == "0px"
        page.goto(base + "/missing")
        assert page.locator("h1").inner_text() == "Page not found"
        assert problems == [] or all("404" in text for text in problems)
        page.close()
