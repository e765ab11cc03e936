"""Walking every page of the route table in a real browser, as each role: for the layout and accessibility tests.

A team with something on every page (a pending invitation, API keys, audit entries, sessions, a mail), a
browser context per role (signed in with a real session cookie), and the list of page addresses from the
application's own route table, so a page added tomorrow is walked the day it is added. The new API key page,
which only a form's answer shows, is reached by submitting the form.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from playwright.async_api import Browser, BrowserContext, Page, expect

from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.members.invitations import invite
from app.tenants.models import Workspace
from tests.helpers import audit, changes, make_user, person, workspace_with
from tests.web.pages import fill, page_get_routes
from tests.workspaces.test_live import cookie_for

PHONE = {"width": 390, "height": 844}
LAPTOP = {"width": 1280, "height": 800}
AXE = Path(__file__).resolve().parents[1] / "a11y" / "node_modules" / "axe-core" / "axe.min.js"

# Addresses that answer with something other than a page: a download, a fragment, a mail's HTML, health checks.
NOT_PAGES = (".csv", ".html", "/slug-preview", "/healthz", "/readyz")
ROLES = ("owner", "admin", "member", "viewer")


@dataclass
class Team:
    workspace: Workspace
    users: dict[str, User]


async def team_with_everything(db: Database, settings: Settings) -> Team:
    """A workspace with all four roles and something to show on each page."""
    workspace, (owner, admin, member, viewer) = await workspace_with(
        db, f"walk-{secrets.token_hex(3)}", ["admin", "member", "viewer"]
    )
    async with changes(db, settings) as session:
        # A pending invitation (and its mail, for the mailbox) to a long address, as phones must show it.
        await invite(session, settings, workspace_id=workspace.id, actor=person(owner), role="member",
                     addresses=["someone-with-a-really-long-address-for-a-phone@example.com"])  # fmt: skip
    await audit(
        db, settings, workspace.id, "settings.changed", owner, {"name": {"from": "Old", "to": "New"}}, ip="203.0.113.9"
    )
    return Team(workspace, {"owner": owner, "admin": admin, "member": member, "viewer": viewer})


def page_paths(settings: Settings, slug: str, user_id: str) -> list[str]:
    """Every page of the route table, filled in for ``slug`` (other ids: unknown ones, whose page says so)."""
    app = create_app(settings.model_copy(update={"dev_routes": True}))
    paths = [fill(path, {"slug": slug, "user_id": user_id}) for path in page_get_routes(app.routes)]
    paths = [path for path in paths if not path.endswith(NOT_PAGES)]
    return sorted({*paths, "/api/v1/docs"})


@asynccontextmanager
async def context_for(
    browser: Browser,
    db: Database,
    settings: Settings,
    base: str,
    user: User | None,
    viewport: dict[str, int],
    **options: object,
) -> AsyncIterator[BrowserContext]:
    phone = viewport == PHONE
    context = await browser.new_context(viewport=viewport, is_mobile=phone, has_touch=phone, **options)  # type: ignore[arg-type]
    if user is not None:
        cookies = await cookie_for(db, settings, user)
        await context.add_cookies([{"name": name, "value": value, "url": base} for name, value in cookies.items()])
    try:
        yield context
    finally:
        await context.close()


async def open_new_key_page(page: Page, base: str, slug: str) -> None:
    """The page that shows a new API key once (a form's answer, not an address)."""
    await page.goto(f"{base}/w/{slug}/api-keys")
    await page.fill("#f-name", "A key with a long name for a narrow screen")
    await page.click("#new-key button[type=submit]")
    await expect(page.locator("h1")).to_have_text("Copy your new key")


async def a_new_user(db: Database) -> User:
    return await make_user(db, "walker")
