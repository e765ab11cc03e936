"""axe-core on every page of the route table, as each role, at laptop and phone widths: no serious or critical
violation. axe comes from npm (tests/a11y, installed by scripts/test) and is injected from that local file."""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import Browser, Page

from app.config import Settings
from app.db import Database
from tests.servers import web_server
from tests.web.walk import AXE, LAPTOP, PHONE, ROLES, context_for, open_new_key_page, page_paths, team_with_everything

GUEST_PAGES = ("/", "/login", "/signup", "/password/forgot", "/sso", "/verify-email?sent=1", "/no/such/page")
SERIOUS = ("serious", "critical")


async def violations(page: Page) -> list[dict[str, Any]]:
    if not await page.evaluate("typeof window.axe !== 'undefined'"):
        await page.add_script_tag(path=str(AXE))
    found: list[dict[str, Any]] = await page.evaluate(
        "axe.run(document, {resultTypes: ['violations']}).then(r => r.violations.map(v => "
        "({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 3).map(n => n.target.join(' '))})))"
    )
    return [violation for violation in found if violation["impact"] in SERIOUS]


def _summary(problems: dict[str, list[dict[str, Any]]]) -> str:
    return json.dumps(problems, indent=1)[:6000]


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [LAPTOP, PHONE], ids=["laptop", "phone"])
async def test_no_serious_accessibility_violation_on_any_page_for_any_role(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str], viewport: dict[str, int]
) -> None:
    assert AXE.is_file(), "run scripts/test once: it installs axe-core into tests/a11y"
    team = await team_with_everything(db, settings)
    slug = team.workspace.slug
    paths = page_paths(settings, slug, str(team.users["member"].id))
    problems: dict[str, list[dict[str, Any]]] = {}
    with web_server(server_env) as base:
        for role in ROLES:
            # axe is injected as a script of its own: the page's CSP (rightly) refuses that, so it is bypassed here.
            async with context_for(browser, db, settings, base, team.users[role], viewport, bypass_csp=True) as context:
                page = await context.new_page()
                for path in paths:
                    await page.goto(base + path)
                    if found := await violations(page):
                        problems[f"{role} {path}"] = found
                if role == "owner":
                    await open_new_key_page(page, base, slug)
                    if found := await violations(page):
                        problems["owner (the new key page)"] = found
                    # The open menus and the confirmation dialog are pages' parts too.
                    await page.goto(f"{base}/w/{slug}/members")
                    await page.click("#user-menu-button")
                    if found := await violations(page):
                        problems["owner (user menu open)"] = found
        async with context_for(browser, db, settings, base, None, viewport, bypass_csp=True) as context:
            page = await context.new_page()
            for path in GUEST_PAGES:
                await page.goto(base + path)
                if found := await violations(page):
                    problems[f"guest {path}"] = found
    assert not problems, _summary(problems)


@pytest.mark.browser
async def test_the_dark_theme_passes_too(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    team = await team_with_everything(db, settings)
    slug = team.workspace.slug
    problems: dict[str, list[dict[str, Any]]] = {}
    with web_server(server_env) as base:
        async with context_for(
            browser, db, settings, base, team.users["owner"], LAPTOP, bypass_csp=True, color_scheme="dark"
        ) as context:
            page = await context.new_page()
            for path in (f"/w/{slug}", f"/w/{slug}/members", f"/w/{slug}/audit", f"/w/{slug}/api-keys",
                         f"/w/{slug}/settings", "/account/security", "/account/profile", "/api/v1/docs"):  # fmt: skip
                await page.goto(base + path)
                if found := await violations(page):
                    problems[path] = found
    assert not problems, _summary(problems)
