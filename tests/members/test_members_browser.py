"""Two people in two real browsers: an owner invites a viewer, who joins; roles are enforced; removal is immediate."""

from __future__ import annotations

import secrets
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, Page, expect
from sqlalchemy import func, select

from app.auth.models import User
from app.db import Database
from app.mail.models import OutboxMessage
from app.tenants.models import Invitation, Membership, Workspace
from tests.browser import STRONG_PASSWORD, confirm, latest_link, sign_up, unique_email
from tests.members.helpers import live_server


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    with live_server(server_env) as base:
        yield base


async def snapshot(db: Database, slug: str) -> tuple[object, ...]:
    async with db.public_session() as session:
        workspace = await session.scalar(select(Workspace).where(Workspace.slug == slug))
        assert workspace is not None
        roles = sorted(
            (str(u), r)
            for u, r in await session.execute(
                select(Membership.user_id, Membership.role).where(Membership.workspace_id == workspace.id)
            )
        )
        invitations = await session.scalar(
            select(func.count()).select_from(Invitation).where(Invitation.workspace_id == workspace.id)
        )
        return workspace.name, workspace.require_2fa, roles, invitations


async def user_id(db: Database, email: str) -> str:
    async with db.public_session() as session:
        return str(await session.scalar(select(User.id).where(User.email == email)))


async def create_workspace(page: Page, name: str, slug: str) -> None:
    # The page's own form: the account menu has a (hidden) "Sign out" submit button too.
    await page.fill("#f-name", name)
    await page.fill("#f-slug", slug)
    await page.click("main button[type=submit]")


def page_problems(page: Page) -> list[str]:
    """Script errors and CSP refusals (no inline script or style may sneak into these pages).

    Plain resource errors are not counted: the removed teammate's 404 is expected, and the dashboard's live
    feed belongs to another change.
    """
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on(
        "console",
        lambda message: (
            problems.append(message.text)
            if message.type == "error" and ("Content Security Policy" in message.text or "Refused" in message.text)
            else None
        ),
    )
    return problems


@pytest.mark.browser
async def test_invite_a_viewer_who_can_change_nothing_then_promote_and_remove(
    browser: Browser, base_url: str, db: Database
) -> None:
    owner_context, mate_context = await browser.new_context(), await browser.new_context()
    owner, mate = await owner_context.new_page(), await mate_context.new_page()
    owner_errors, mate_errors = page_problems(owner), page_problems(mate)
    slug = f"orbit-{secrets.token_hex(3)}"
    owner_email, mate_email = unique_email("olive"), unique_email("tess")

    # The owner signs up, creates the workspace, skips the onboarding steps and invites from Members.
    await sign_up(owner, base_url, owner_email, "Olive Owner")
    await create_workspace(owner, "Orbit Labs", slug)
    await expect(owner.locator("h1")).to_have_text("Invite your team")
    await owner.click("text=Skip for now")
    await expect(owner.locator("h1")).to_have_text("Connect an LLM")
    await owner.click("text=Skip for now")
    await expect(owner.locator("h1")).to_have_text("Add your team of agents")
    await owner.get_by_role("link", name="Skip", exact=True).click()
    await expect(owner.locator("h1")).to_have_text("Watch a first run")
    await owner.get_by_role("link", name="Skip", exact=True).click()
    await owner.click("nav.sidebar >> text=Members")
    await expect(owner.locator("main h1")).to_have_text("Members")
    await expect(owner.locator("table.permissions")).to_contain_text("Transfer ownership to another member")
    await owner.fill("#f-emails", mate_email)
    await owner.select_option("#f-role", "viewer")
    await owner.click("text=Send invitations")
    await expect(owner.locator("#toasts")).to_contain_text("Invitation sent.")
    await expect(owner.locator(f'tr[data-invitation="{mate_email}"]')).to_contain_text("viewer")

    # The teammate opens the mailed link in another browser: a new person is offered "Create account to accept",
    # with the address filled in; the link proved the address, so there is no second confirmation (issue 10).
    link = await latest_link(mate, base_url, mate_email, "/invite/")
    await mate.goto(link)
    await expect(mate.locator("h1")).to_have_text("Join Orbit Labs")
    await expect(mate.locator("main")).to_contain_text("Olive Owner invited")
    await expect(mate.get_by_role("link", name="Sign in to accept")).to_have_count(0)
    await mate.get_by_role("link", name="Create account to accept").click()
    await expect(mate.locator("h1")).to_have_text("Create your account to join Orbit Labs")
    await expect(mate.locator("#f-email")).to_have_value(mate_email)
    await mate.fill("#f-display_name", "Tess Teammate")
    await mate.fill("#f-password", STRONG_PASSWORD)
    await mate.click("main button[type=submit]")
    await expect(mate).to_have_url(f"{base_url}/w/{slug}")
    async with db.public_session() as session:
        confirmations = await session.scalar(
            select(func.count())
            .select_from(OutboxMessage)
            .where(OutboxMessage.to_address == mate_email, OutboxMessage.kind == "verify-email")
        )
    assert confirmations == 0
    await expect(mate.locator("main h1")).to_have_text("Orbit Labs")
    await expect(mate.locator(".badge").first).to_have_text("viewer")
    await expect(mate.locator("#toasts")).to_contain_text("Welcome to Orbit Labs")

    # As a viewer: no invite form, no role controls, no settings form...
    await mate.goto(f"{base_url}/w/{slug}/members")
    await expect(mate.locator(f'tr[data-member="{owner_email}"]')).to_contain_text("owner")
    await expect(mate.locator("textarea[name=emails]")).to_have_count(0)
    await expect(mate.locator("text=Change role")).to_have_count(0)
    await expect(mate.locator("button", has_text="Remove")).to_have_count(0)
    await expect(mate.locator("table.permissions")).to_be_visible()
    # ...and crafted requests, with a valid CSRF token from the page, are refused without changing anything.
    token = await mate.locator("input[name=csrf_token]").first.get_attribute("value")
    assert token
    before = await snapshot(db, slug)
    mate_id, owner_id = await user_id(db, mate_email), await user_id(db, owner_email)
    for path, form in [
        (f"/w/{slug}/members/invite", {"emails": "friend@example.com", "role": "admin"}),
        (f"/w/{slug}/members/{mate_id}/role", {"role": "admin"}),
        (f"/w/{slug}/members/{owner_id}/remove", {}),
        (f"/w/{slug}/settings", {"name": "Taken over", "require_2fa": "on"}),
        (f"/w/{slug}/settings/transfer", {"member": mate_id}),
        (f"/w/{slug}/settings/delete", {"confirm_name": "Orbit Labs"}),
    ]:
        response = await mate.request.post(base_url + path, form={"csrf_token": token, **form}, max_redirects=0)
        assert response.status == 403, path
    assert await snapshot(db, slug) == before
    await mate.goto(f"{base_url}/w/{slug}/settings")
    await expect(mate.locator("text=Save settings")).to_have_count(0)
    await expect(mate.locator("text=Delete workspace")).to_have_count(0)

    # The owner makes the teammate a member; the teammate sees it on their next page.
    await owner.goto(f"{base_url}/w/{slug}/members")
    row = owner.locator(f'tr[data-member="{mate_email}"]')
    await row.locator("select").select_option("member")
    await row.locator("text=Change role").click()
    await expect(owner.locator("#toasts")).to_contain_text("Tess Teammate is now member.")
    await expect(owner.locator(f'tr[data-member="{mate_email}"] .badge')).to_have_text("member")
    await mate.goto(f"{base_url}/w/{slug}/members")
    await expect(mate.locator(f'tr[data-member="{mate_email}"] .badge')).to_have_text("member")
    await expect(mate.locator("textarea[name=emails]")).to_have_count(0)

    # The owner removes them: their very next request gets 404.
    await owner.locator(f'tr[data-member="{mate_email}"]').locator("button", has_text="Remove").click()
    await confirm(owner)
    await expect(owner.locator("#toasts")).to_contain_text("was removed")
    await expect(owner.locator(f'tr[data-member="{mate_email}"]')).to_have_count(0)
    response = await mate.goto(f"{base_url}/w/{slug}")
    assert response is not None and response.status == 404

    # The audit log tells the story; the action filter swaps the results in place and keeps the URL.
    await owner.click("nav.sidebar >> text=Audit log")
    await expect(owner.locator("main h1")).to_have_text("Audit log")
    for label in ("Invited someone", "Accepted an invitation", "Changed a member's role", "Removed a member"):
        await expect(owner.locator("table.audit")).to_contain_text(label)
    await owner.select_option("#f-action", "member.role_changed")
    await expect(owner).to_have_url(f"{base_url}/w/{slug}/audit?action=member.role_changed")
    await expect(owner.locator("table.audit tbody tr")).to_have_count(1)
    await expect(owner.locator("table.audit")).to_contain_text("viewer → member")
    await owner.reload()
    await expect(owner.locator("table.audit tbody tr")).to_have_count(1)

    assert owner_errors == [] and mate_errors == [], (owner_errors, mate_errors)
    await owner_context.close()
    await mate_context.close()
