"""2FA in a real browser: enrol from the QR page, save the recovery codes, then sign in with a code; a code
is accepted once, and so is each recovery code."""

from __future__ import annotations

import re
import secrets
import time
from collections.abc import Iterator

import pyotp
import pytest
from playwright.async_api import Browser, ConsoleMessage, Page, expect

from app.embedded.util import free_port
from tests import servers
from tests.browser import log_in, sign_up, unique_email


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    # Links in mail must point at this server, so the port is chosen before it starts.
    port = free_port()
    env = {**server_env, "MARID_BASE_URL": f"http://127.0.0.1:{port}"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(servers, "free_port", lambda: port)
        with servers.web_server(env) as base:
            yield base


def code_for_next_step(secret: str) -> str:
    """The server accepts one step of clock drift; the next step's code is never one already used."""
    return str(pyotp.TOTP(secret).at(time.time() + 30))


async def sign_out(page: Page) -> None:
    await page.click("#user-menu-button")
    await page.click("#sign-out")
    await expect(page).to_have_url(re.compile(r"/login$"))


async def second_step(page: Page, base: str, email: str, code: str) -> None:
    await log_in(page, base, email)
    await expect(page).to_have_url(base + "/login/2fa")
    await page.fill("#f-code", code)
    await page.click("main button[type=submit]")


@pytest.mark.browser
async def test_enrol_then_sign_in_with_codes(browser: Browser, base_url: str) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    problems: list[str] = []

    def console(message: ConsoleMessage) -> None:
        # Refused codes answer 401, which Chromium logs; anything else (a CSP violation, say) is a problem.
        if message.type == "error" and "status of 401" not in message.text:
            problems.append(message.text)

    page.on("console", console)

    email = unique_email("totp")
    await sign_up(page, base_url, email)
    slug = f"babbage-{secrets.token_hex(3)}"
    # Not tests.browser.create_workspace: its bare "button[type=submit]" also matches the hidden sign-out button.
    await page.fill("#f-name", "Babbage Labs")
    await page.fill("#f-slug", slug)
    await page.click("main button[type=submit]")
    await expect(page).not_to_have_url(re.compile(r"/onboarding$"))
    await page.goto(base_url + "/account/2fa")
    await page.click("text=Set up two-factor authentication")
    await expect(page.locator(".qr svg")).to_be_visible()
    await page.screenshot(path="/tmp/marid-2fa-enrol.png", full_page=True)
    secret = "".join((await page.locator("#totp-secret").inner_text()).split())
    await page.fill("#f-code", pyotp.TOTP(secret).now())
    await page.click("text=Turn on two-factor authentication")
    await expect(page.locator("h1")).to_have_text("Save your recovery codes")
    await expect(page.locator("#recovery-codes li")).to_have_count(10)
    codes = [text.strip() for text in await page.locator("#recovery-codes li").all_inner_texts()]
    await page.click("#continue")
    await expect(page.locator("#twofactor-summary .badge")).to_have_text("On")
    await sign_out(page)

    # Password, then a code: signed in.
    code = code_for_next_step(secret)
    await second_step(page, base_url, email, code)
    await expect(page).to_have_url(re.compile(r"/(workspaces|w/[^/]+)$"))
    await sign_out(page)

    # The same code again is a replay.
    await second_step(page, base_url, email, code)
    await expect(page.locator("#e-code")).to_contain_text("already used")

    # A recovery code works once (typed in its own form: the code field shows a phone's number pad)...
    await expect(page.locator("#f-code")).to_have_attribute("inputmode", "numeric")
    await expect(page.locator("#f-code")).to_have_attribute("autocomplete", "one-time-code")
    await page.click("text=Use a recovery code")
    await page.fill("#f-recovery-code", codes[0])
    await page.click("text=Use recovery code")
    await expect(page).to_have_url(re.compile(r"/(workspaces|w/[^/]+)$"))
    await page.goto(base_url + "/account/security")
    await expect(page.locator("#twofactor-summary")).to_contain_text("9 of 10 recovery codes left")
    await page.goto(base_url + "/account/sessions")
    await expect(page.locator("#sessions")).to_contain_text("This browser")
    await sign_out(page)

    # ...and not twice.
    await log_in(page, base_url, email)
    await expect(page).to_have_url(base_url + "/login/2fa")
    await page.click("text=Use a recovery code")
    await page.fill("#f-recovery-code", codes[0].upper())
    await page.click("text=Use recovery code")
    await expect(page.locator("#e-code")).to_contain_text("already used")

    assert problems == [], problems
    await context.close()
