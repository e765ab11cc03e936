"""People, workspaces and SSO settings made straight in the database (the people and workspaces from
tests.helpers; workspaces are labelled "sso" unless told otherwise), and the provider's sign-in pages."""

from __future__ import annotations

import secrets
from typing import Any

from playwright.async_api import Browser, BrowserContext, Page
from sqlalchemy import select

from app.audit.actor import Actor
from app.audit.models import AuditEvent
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.security.secrets import SecretsService
from app.sso.dns import make_resolver, record_name, record_value
from app.sso.domains import add_domain, lookup, record_check
from app.sso.models import SsoConnection, SsoDomain
from app.sso.service import ConnectionSettings, save_connection
from app.tenants.models import Workspace
from tests import helpers as shared
from tests.dns_server import TestDns
from tests.helpers import add_member, changes, count, csrf_of, make_user
from tests.sso.conftest import CLIENT_ID, CLIENT_SECRET

__all__ = [
    "add_member",
    "audit_actions",
    "configure",
    "count",
    "csrf_of",
    "make_user",
    "make_workspace",
    "sign_in_at_provider",
    "sso_login",
    "unique_domain",
    "users_with_email",
    "verify_domain",
]


# Who sets a test's workspace up, in its audit log.
SETUP = Actor.system("test setup")


def unique_domain() -> str:
    # Each test has its own e-mail domain, so no two workspaces in the shared database claim the same one.
    return f"sso-{secrets.token_hex(4)}.test"


async def make_workspace(db: Database, owner: User, label: str = "sso") -> Workspace:
    return await shared.make_workspace(db, owner, label)


async def configure(
    db: Database,
    settings: Settings,
    workspace: Workspace,
    issuer: str,
    domain: str,
    *,
    dns: TestDns | None = None,
    **fields: str,
) -> SsoConnection:
    """SSO set up as an admin would on the settings page (same services, same validation).

    ``domain`` (if any) is added to the workspace's domains; with ``dns`` it is also proven (its TXT record
    published on the test DNS server and checked over DNS), otherwise it stays unverified.
    """
    form = {
        "issuer": issuer,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "default_role": "member",
        "enabled": "on",
        **fields,
    }
    values = ConnectionSettings(
        issuer=form["issuer"],
        client_id=form["client_id"],
        client_secret=form["client_secret"],
        default_role=form["default_role"],
        **{flag: form.get(flag) == "on" for flag in ("enabled", "enforce_sso", "managed_accounts", "confirm_managed")},
    )
    async with changes(db, settings) as session:
        service = SecretsService(settings.keyring(), db)
        connection, _ = await save_connection(
            session, settings, service, workspace_id=workspace.id, values=values, actor=SETUP
        )
    if domain and dns is not None:
        await verify_domain(db, settings, dns, workspace, domain)
    elif domain:
        async with changes(db, settings) as session:
            await add_domain(session, workspace.id, domain, SETUP)
    return connection


async def verify_domain(db: Database, settings: Settings, dns: TestDns, workspace: Workspace, domain: str) -> SsoDomain:
    """Add ``domain`` to the workspace (unless it is there), publish its record, and verify it as "Verify" does."""
    async with changes(db, settings) as session:
        row = await session.scalar(
            select(SsoDomain).where(SsoDomain.workspace_id == workspace.id, SsoDomain.domain == domain)
        )
        if row is None:
            row = await add_domain(session, workspace.id, domain, SETUP)
    dns.zone.publish_txt(record_name(domain), record_value(row.token))
    found = await lookup(make_resolver(settings.dns_nameserver_list), domain)
    async with changes(db, settings) as session:
        outcome = await record_check(session, workspace.id, row.id, found, token=row.token, actor=SETUP)
    assert outcome.verified, outcome.message
    return outcome.domain


async def audit_actions(db: Database, workspace: Workspace) -> list[tuple[str, dict[str, Any]]]:
    async with db.tenant_session(workspace.id) as session:
        rows = await session.execute(select(AuditEvent.action, AuditEvent.details).order_by(AuditEvent.id))
        return [(action, details) for action, details in rows]


async def users_with_email(db: Database, email: str) -> list[User]:
    async with db.public_session() as session:
        return list(await session.scalars(select(User).where(User.email == email)))


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
