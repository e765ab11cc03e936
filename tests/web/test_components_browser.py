"""The shared components in a real browser (issue 10): a submit shows progress and cannot be sent twice while a
slow request is in flight; menus close with Escape, one at a time, and work from the keyboard; the confirmation
dialog keeps focus and gives it back; the URL name is previewed as it is typed; signing in goes back to the
last workspace; the dark theme follows the system."""

from __future__ import annotations

import asyncio
import json
import re
import secrets

import pytest
from playwright.async_api import Browser, Page, Route, expect
from sqlalchemy import func, select

from app.config import Settings
from app.db import Database
from app.tenants.models import Invitation
from tests.browser import log_in, sign_out
from tests.helpers import add_member, make_workspace
from tests.servers import web_server
from tests.web.walk import LAPTOP, context_for, team_with_everything


async def focused_id(page: Page) -> str:
    return str(await page.evaluate("document.activeElement && document.activeElement.id"))


@pytest.mark.browser
async def test_a_slow_submit_shows_progress_and_is_sent_once(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    slug = team.workspace.slug
    with web_server(server_env) as base:
        async with context_for(browser, db, settings, base, team.users["owner"], LAPTOP) as context:
            page = await context.new_page()
            posts: list[str] = []

            async def slow(route: Route) -> None:
                posts.append(route.request.url)
                await asyncio.sleep(1.5)  # a slow network: the request is in flight meanwhile
                await route.continue_()

            await page.route(re.compile(r"/members/invite$"), slow)
            await page.goto(f"{base}/w/{slug}/members")
            await page.fill("#f-emails", "slow@example.com")
            # Clicked as a person does; 300 ms later the page notes what its button looks like (in sessionStorage,
            # which outlives the page) and is clicked again, while the request is still in flight.
            await page.evaluate(
                """() => {
                    const button = document.querySelector('#invite button[type=submit]');
                    button.click();
                    setTimeout(() => {
                        sessionStorage.setItem('busy', JSON.stringify([
                            button.disabled, button.classList.contains('is-busy'), button.textContent,
                            button.form.getAttribute('aria-busy'), document.body.classList.contains('is-submitting')]));
                        button.click();
                    }, 300);
                }"""
            )
            await expect(page.locator("#toasts")).to_contain_text("Invitation sent.")
            state = json.loads(await page.evaluate("sessionStorage.getItem('busy')") or "null")
            assert state == [True, True, "Sending…", "true", True], state
            assert len(posts) == 1
    async with db.public_session() as session:
        sent = await session.scalar(
            select(func.count()).select_from(Invitation).where(Invitation.email == "slow@example.com")
        )
    assert sent == 1


@pytest.mark.browser
async def test_menus_close_with_escape_one_at_a_time_and_work_from_the_keyboard(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    slug = team.workspace.slug
    with web_server(server_env) as base:
        async with context_for(browser, db, settings, base, team.users["owner"], LAPTOP) as context:
            page = await context.new_page()
            await page.goto(f"{base}/w/{slug}")
            user_button, switcher_button = page.locator("#user-menu-button"), page.locator("#switcher-button")
            user_menu, switcher_menu = page.locator("#user-menu"), page.locator("#switcher-menu")
            await expect(user_button).to_have_attribute("aria-haspopup", "menu")
            await expect(user_menu).to_have_attribute("role", "menu")

            # Click opens; Escape closes and gives focus back to the button.
            await user_button.click()
            await expect(user_menu).to_be_visible()
            await expect(user_button).to_have_attribute("aria-expanded", "true")
            assert (await page.evaluate("document.activeElement.getAttribute('role')")) == "menuitem"
            await page.keyboard.press("Escape")
            await expect(user_menu).to_be_hidden()
            await expect(user_button).to_have_attribute("aria-expanded", "false")
            assert await focused_id(page) == "user-menu-button"

            # One menu at a time.
            await switcher_button.click()
            await expect(switcher_menu).to_be_visible()
            await user_button.click()
            await expect(user_menu).to_be_visible()
            await expect(switcher_menu).to_be_hidden()
            await page.mouse.click(600, 500)  # a click elsewhere closes it
            await expect(user_menu).to_be_hidden()

            # The keyboard alone: ArrowDown opens on the first item, arrows move (wrapping), Enter follows.
            await user_button.focus()
            await page.keyboard.press("ArrowDown")
            await expect(user_menu).to_be_visible()
            first = await page.evaluate("document.activeElement.textContent.trim()")
            assert first == "Profile"
            await page.keyboard.press("ArrowUp")
            assert await focused_id(page) == "sign-out"
            await page.keyboard.press("Home")
            await page.keyboard.press("ArrowDown")
            await page.keyboard.press("Enter")
            await expect(page).to_have_url(f"{base}/account/security")


@pytest.mark.browser
async def test_the_confirmation_dialog_keeps_focus_and_gives_it_back(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    slug = team.workspace.slug
    with web_server(server_env) as base:
        async with context_for(browser, db, settings, base, team.users["owner"], LAPTOP) as context:
            page = await context.new_page()
            await page.goto(f"{base}/w/{slug}/members")
            withdraw = page.locator("table.invitations button", has_text="Withdraw").first
            await withdraw.click()
            dialog = page.locator("#confirm-dialog")
            await expect(dialog).to_be_visible()
            await expect(dialog).to_contain_text("Withdraw the invitation for")
            assert await focused_id(page) == "confirm-cancel", "the safe choice has focus"
            for _ in range(5):  # Tab stays inside the dialog
                await page.keyboard.press("Tab")
                assert await page.evaluate("document.getElementById('confirm-dialog').contains(document.activeElement)")
            await page.keyboard.press("Escape")
            await expect(dialog).to_be_hidden()
            assert await page.evaluate("document.activeElement.textContent.trim().startsWith('Withdraw')")
            await expect(page.locator("table.invitations tbody tr")).to_have_count(1)  # nothing happened
            await withdraw.click()
            await page.locator("#confirm-ok").click()
            await expect(page.locator("#toasts")).to_contain_text("withdrawn")


@pytest.mark.browser
async def test_the_url_name_is_previewed_as_it_is_typed_with_a_free_alternative(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    taken = team.workspace.slug
    with web_server(server_env) as base:
        async with context_for(browser, db, settings, base, team.users["owner"], LAPTOP) as context:
            page = await context.new_page()
            await page.goto(f"{base}/workspaces/new")
            name = f"Preview Lab {secrets.token_hex(2)}"
            await page.locator("#f-name").press_sequentially(name, delay=20)
            expected = re.sub(r"[^a-z0-9]+", "-", name.lower())
            await expect(page.locator("#slug-preview")).to_contain_text(f"/w/{expected}")
            await page.fill("#f-slug", taken)
            await expect(page.locator("#slug-preview")).to_contain_text("is taken")
            suggestion = page.locator("#slug-preview button")
            await suggestion.click()
            value = await page.locator("#f-slug").input_value()
            assert value != taken and value.startswith(taken[:30])
            await expect(page.locator("#slug-preview")).to_contain_text(f"/w/{value}")
            await page.click("main button[type=submit]")
            await expect(page).to_have_url(f"{base}/w/{value}")


@pytest.mark.browser
async def test_signing_in_goes_back_to_the_workspace_used_last(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    member = team.users["member"]
    other = await make_workspace(db, team.users["owner"], "elsewhere")
    await add_member(db, other, member, "viewer")
    with web_server(server_env) as base:
        async with context_for(browser, db, settings, base, None, LAPTOP) as context:
            page = await context.new_page()
            await log_in(page, base, member.email)
            await page.goto(f"{base}/w/{other.slug}")
            await sign_out(page)
            await expect(page).to_have_url(f"{base}/login")
            await expect(page.locator("#toasts")).to_contain_text("You are signed out.")
            await log_in(page, base, member.email)
            await expect(page).to_have_url(f"{base}/w/{other.slug}")


@pytest.mark.browser
async def test_the_dark_theme_follows_the_system_setting(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    def luminance(rgb: str) -> float:
        red, green, blue = (int(part) for part in re.findall(r"\d+", rgb)[:3])
        return (0.2126 * red + 0.7152 * green + 0.0722 * blue) / 255

    backgrounds: dict[str, float] = {}
    with web_server(server_env) as base:
        for scheme in ("light", "dark"):
            async with context_for(browser, db, settings, base, None, LAPTOP, color_scheme=scheme) as context:
                page = await context.new_page()
                await page.goto(f"{base}/login")
                body = await page.evaluate("getComputedStyle(document.body).backgroundColor")
                card = await page.evaluate("getComputedStyle(document.querySelector('.card')).backgroundColor")
                text = await page.evaluate("getComputedStyle(document.body).color")
                backgrounds[scheme] = luminance(body)
                assert (luminance(card) > 0.5) == (scheme == "light") and (luminance(text) > 0.5) == (scheme == "dark")
                await page.screenshot(path=f"/tmp/marid-login-{scheme}.png")
    assert backgrounds["light"] > 0.9 and backgrounds["dark"] < 0.15
