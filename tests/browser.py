"""Helpers for browser tests: a live server per module and small user journeys reused across tests."""

from __future__ import annotations

import re
import secrets

from playwright.async_api import Page, expect

STRONG_PASSWORD = "correct horse battery staple 42"


def unique_email(label: str = "user") -> str:
    return f"{label}-{secrets.token_hex(4)}@example.com"


async def latest_link(page: Page, base: str, to: str, path_prefix: str) -> str:
    """Open the dev mailbox like a developer would and return the newest link to ``path_prefix`` sent to ``to``."""
    await page.goto(base + "/dev/mailbox")
    mail = page.locator("article.mail", has_text=to).first
    await expect(mail).to_be_visible()
    body = await mail.locator(".mail-body").inner_text()
    match = re.search(re.escape(base) + re.escape(path_prefix) + r"[^\s]+", body)
    assert match, f"no {path_prefix} link in mail to {to}: {body}"
    return match.group(0)


async def sign_up(page: Page, base: str, email: str, name: str = "Ada Lovelace") -> None:
    """Sign up and confirm the e-mail address; ends on the onboarding page."""
    await page.goto(base + "/signup")
    await page.fill("#f-display_name", name)
    await page.fill("#f-email", email)
    await page.fill("#f-password", STRONG_PASSWORD)
    await page.click("main button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Check your inbox")
    link = await latest_link(page, base, email, "/verify-email/")
    await page.goto(link)
    await expect(page.locator("h1")).to_have_text("Create your workspace")


async def create_workspace(page: Page, name: str, slug: str) -> None:
    await page.fill("#f-name", name)
    await page.fill("#f-slug", slug)
    await page.click("main button[type=submit]")


async def log_in(page: Page, base: str, email: str, password: str = STRONG_PASSWORD) -> None:
    await page.goto(base + "/login")
    await page.fill("#f-email", email)
    await page.fill("#f-password", password)
    await page.click("main button[type=submit]")


async def confirm(page: Page) -> None:
    """Accept the confirmation dialog a dangerous button opens (``<dialog id="confirm-dialog">``, marid.js)."""
    dialog = page.locator("#confirm-dialog")
    await expect(dialog).to_be_visible()
    await dialog.locator("#confirm-ok").click()


async def sign_out(page: Page) -> None:
    """Sign out from the account menu, as a person would."""
    await page.click("#user-menu-button")
    await page.click("#sign-out")
