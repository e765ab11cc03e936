"""In a real browser: onboarding adds the starter team; an agent made from the roster has its persona edited
with the system prompt preview following the typing, before anything is saved; no agent page scrolls sideways
on a phone."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from playwright.async_api import Browser, expect

from app.agents import service
from app.agents.roster import starters
from app.config import Settings
from app.db import Database
from app.secrets.service import create_secret, set_grants
from app.security.secrets import SecretsService
from tests.agents.helpers import agents_in, workspace_changes
from tests.browser import create_workspace, log_in, sign_up, unique_email
from tests.helpers import make_user, make_workspace, person
from tests.members.helpers import live_server

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    with live_server(server_env) as base:
        yield base


@pytest.mark.browser
async def test_onboarding_adds_the_starter_team(browser: Browser, base_url: str, db: Database) -> None:
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    slug = f"crew-{secrets.token_hex(3)}"
    await sign_up(page, base_url, unique_email("crew"), "Cora Crew")
    await create_workspace(page, "Crew", slug)
    await expect(page.locator("h1")).to_have_text("Invite your team")
    await page.click("text=Skip for now")
    await expect(page.locator("h1")).to_have_text("Connect an LLM")
    await page.click("text=Skip for now")
    await expect(page.locator("h1")).to_have_text("Add your team of agents")
    boxes = page.locator("input[name=roster]")
    await expect(boxes).to_have_count(len(starters()))
    for index in range(len(starters())):
        await expect(boxes.nth(index)).to_be_checked()
    await page.uncheck("input[name=roster][value=ux-designer]")
    await page.click("#add-team")
    # On to onboarding's last step (a first run, tests/runs/test_runs_browser.py), skipped here.
    await expect(page).to_have_url(f"{base_url}/w/{slug}/onboarding/run")
    await expect(page.locator("#toasts")).to_contain_text(f"Added {len(starters()) - 1} agents")
    await page.click("main >> text=Skip")
    await expect(page).to_have_url(f"{base_url}/w/{slug}")
    await page.click("nav.sidebar >> text=Agents")
    await expect(page.locator(".agent-card")).to_have_count(len(starters()) - 1)
    await expect(page.locator(".agent-card[data-agent=sre]")).to_contain_text("Site reliability engineer")
    await page.screenshot(path="/tmp/marid-agents.png", full_page=True)
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_an_agent_from_the_roster_gets_its_persona_edited_with_a_live_preview(
    browser: Browser, base_url: str, db: Database
) -> None:
    owner = await make_user(db, "persona")
    workspace = await make_workspace(db, owner, "persona")
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await log_in(page, base_url, owner.email)
    await expect(page).not_to_have_url(re.compile(r"/login"))

    # Create one agent from the roster.
    await page.goto(f"{base_url}/w/{workspace.slug}/agents")
    await page.click("text=Add from the roster")
    await expect(page.locator("h1")).to_have_text("Starter roster")
    for item in starters():
        if item.id != "architect":
            await page.uncheck(f"input[name=roster][value={item.id}]")
    await page.click("#add-roster")
    card = page.locator(".agent-card[data-agent=architect]")
    await expect(card).to_contain_text("Software architect")
    await expect(page.locator(".agent-card")).to_have_count(1)

    # Edit its persona: the preview follows the typing.
    await card.click()
    await expect(page.locator("h1")).to_have_text("Idris")
    await page.click("text=Edit")
    await expect(page.locator("h1")).to_have_text("Edit Idris")
    preview = page.locator("#prompt-preview")
    await expect(preview).to_contain_text("## Personality")
    await expect(preview).to_contain_text("You are Idris (Software architect).")
    before = (await agents_in(db, workspace.id))["architect"]
    marker = f"Speaks only in haiku {secrets.token_hex(3)}."
    await page.fill("#f-personality", marker)
    await expect(preview).to_contain_text(marker)
    await expect(preview).not_to_contain_text("patient, concrete and a little sceptical")
    # A tool ticked or unticked shows too; the role feeds the opening line.
    await page.uncheck("input[name=tools][value=bash]")
    await expect(preview).not_to_contain_text("`bash`")
    await page.fill("#f-role", "Chief haiku officer")
    await expect(preview).to_contain_text("You are Idris (Chief haiku officer).")
    # A draft that could not be saved still previews, with the reason.
    await page.fill("#f-model", "not a model")
    await expect(preview.locator(".alert.warn")).to_contain_text("provider/model")
    await page.screenshot(path="/tmp/marid-agent-editor.png", full_page=False)
    await page.fill("#f-model", "")
    await expect(preview.locator(".alert.warn")).to_have_count(0)
    # Nothing was saved by any of that.
    after = (await agents_in(db, workspace.id))["architect"]
    assert (after.personality, after.role, after.tools, after.updated_at) == (
        before.personality,
        before.role,
        before.tools,
        before.updated_at,
    )
    # Saving keeps exactly what the preview showed.
    shown = await page.locator("#prompt-text").inner_text()
    await page.click("#save-agent")
    await expect(page.locator("#toasts")).to_contain_text("Saved Idris.")
    saved = (await agents_in(db, workspace.id))["architect"]
    assert saved.personality == marker and saved.role == "Chief haiku officer" and "bash" not in saved.tools
    await expect(page.locator("#prompt-text")).to_have_count(1)
    # (On the agent's page the prompt sits in a closed <details>: read its text, not what is visible.)
    assert ((await page.locator("#prompt-text").text_content()) or "").strip() == shown.strip()
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_no_agent_or_secret_page_scrolls_sideways_on_a_phone(
    browser: Browser, base_url: str, db: Database, settings: Settings, secrets_service: SecretsService
) -> None:
    owner = await make_user(db, "phone-owner-with-a-rather-long-name")
    workspace = await make_workspace(db, owner, "phoneagents")
    async with workspace_changes(db, settings, workspace.id) as session:
        await service.add_from_roster(session, person(owner), [item.id for item in starters()])
        secret = await create_secret(
            session,
            secrets_service,
            workspace.id,
            person(owner),
            name="A_RATHER_LONG_SECRET_NAME_FOR_A_PHONE_SCREEN",
            value="x" * 64,
            description="A description long enough to need wrapping on a narrow phone screen, surely.",
        )
        await set_grants(session, person(owner), secret.id, [item.id for item in starters()])
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)
    page = await context.new_page()
    await log_in(page, base_url, owner.email)
    await expect(page).not_to_have_url(re.compile(r"/login"))
    base = f"/w/{workspace.slug}"
    paths = [
        f"{base}/agents",
        f"{base}/agents/new",
        f"{base}/agents/roster",
        f"{base}/agents/software-engineer",
        f"{base}/agents/software-engineer/edit",
        f"{base}/secrets",
        f"{base}/secrets/{secret.id}",
        f"{base}/onboarding/agents",
    ]
    too_wide: dict[str, int] = {}
    for path in paths:
        await page.goto(base_url + path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = width
    await context.close()
    assert too_wide == {}
