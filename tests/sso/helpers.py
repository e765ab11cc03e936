"""People, workspaces and SSO settings made straight in the database, and the provider's sign-in pages."""

from __future__ import annotations

import re
import secrets
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.auth.models import User
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.security.passwords import hash_password
from app.sso.models import SsoConnection
from app.sso.service import save_connection
from app.tenants.models import Membership, Workspace
from app.tenants.service import create_workspace
from tests.browser import STRONG_PASSWORD
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET

_PASSWORD_HASH = hash_password(STRONG_PASSWORD)


def unique_domain() -> str:
    # Each test has its own e-mail domain, so no two workspaces in the shared database claim the same one.
    return f"sso-{secrets.token_hex(4)}.test"


async def make_user(db: Database, label: str, *, email: str | None = None) -> User:
    """A confirmed account whose password is ``STRONG_PASSWORD``."""
    async with db.public_session() as session:
        user = User(
            email=email or f"{label}-{secrets.token_hex(4)}@example.com",
            display_name=label.title(),
            password_hash=_PASSWORD_HASH,
            email_verified_at=now(),
            password_changed_at=now(),
        )
        session.add(user)
        await session.flush()
        return user


async def make_workspace(db: Database, owner: User, label: str = "sso") -> Workspace:
    async with db.public_session() as session:
        return await create_workspace(
            session, name=f"{label.title()} Team", slug=f"{label}-{secrets.token_hex(4)}", owner_id=owner.id
        )


async def add_member(db: Database, workspace: Workspace, user: User, role: str) -> None:
    async with db.public_session() as session:
        session.add(Membership(workspace_id=workspace.id, user_id=user.id, role=role))


async def configure(
    db: Database, settings: Settings, workspace: Workspace, issuer: str, domain: str, **fields: str
) -> SsoConnection:
    """SSO set up as an admin would on the settings page (same service, same validation)."""
    form = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "allowed_domains": domain,
        "default_role": "member",
        "enabled": "on",
        **fields,
    }
    async with db.public_session() as session:
        connection, _ = await save_connection(session, settings, workspace_id=workspace.id, form=form)
    return connection


async def count(db: Database, model: Any, *where: Any) -> int:
    async with db.public_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def audit_actions(db: Database, workspace: Workspace) -> list[tuple[str, dict[str, Any]]]:
    async with db.tenant_session(workspace.id) as session:
        rows = await session.execute(select(AuditEvent.action, AuditEvent.details).order_by(AuditEvent.id))
        return [(action, details) for action, details in rows]


async def users_with_email(db: Database, email: str) -> list[User]:
    async with db.public_session() as session:
        return list(await session.scalars(select(User).where(User.email == email)))


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, "the page has no CSRF field"
    return match.group(1)


async def sign_in_at_provider(page: Page, login: str) -> None:
    """The provider's own pages: Sign-in (any password), then the consent page."""
    await page.wait_for_selector("input[name=login]")
    await page.fill("input[name=login]", login)
    await page.fill("input[name=password]", "any password")
    await page.click("button:has-text('Sign-in')")
    await page.click("button:has-text('Continue')")


async def sso_login(browser: Browser, base: str, identifier: str, login: str) -> tuple[BrowserContext, Page]:
    """Continue with SSO in a fresh browser (the provider remembers sign-ins per browser); ends back at Marid."""
    context = await browser.new_context()
    context.set_default_timeout(10_000)
    page = await context.new_page()
    await page.goto(base + "/login")
    await page.click("#continue-with-sso")
    await page.fill("#f-identifier", identifier)
    await page.click("#sso-submit")
    await sign_in_at_provider(page, login)
    await page.wait_for_url(base + "/**")
    return context, page
