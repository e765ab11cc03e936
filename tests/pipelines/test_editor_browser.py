"""In a real browser: a starter added from the pipelines page opens in the editor; typing a mistake shows it
with its line and column (a click puts the caret there) and the step graph follows the draft; saving makes a
new version whose diff reads as typed; a file loads into the editor; no pipeline page scrolls sideways on a
phone."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from app.config import Settings
from app.db import Database
from app.onboarding.first_run import ensure_starter
from tests.agents.helpers import workspace_changes
from tests.browser import log_in
from tests.helpers import make_user, make_workspace, person
from tests.members.helpers import live_server
from tests.pipelines.test_pages_http import SMALL, versions_of
from tests.web.test_accessibility import violations

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    with live_server(server_env) as base:
        yield base


@pytest.mark.browser
async def test_the_editor_checks_as_you_type_and_saves_a_version(
    browser: Browser, base_url: str, db: Database, tmp_path: Path
) -> None:
    owner = await make_user(db, "pipes")
    workspace = await make_workspace(db, owner, "pipes")
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # (The refused save below answers 422, which the browser logs as a failed resource: that one is expected.)
    page.on(
        "console",
        lambda message: (
            errors.append(message.text) if message.type == "error" and "status of 422" not in message.text else None
        ),
    )
    await log_in(page, base_url, owner.email)
    await expect(page).not_to_have_url(re.compile(r"/login"))

    await page.goto(f"{base_url}/w/{workspace.slug}")
    await page.click("nav.sidebar >> text=Pipelines")
    await expect(page.locator("h1")).to_have_text("Pipelines")
    await page.click("[data-starter=bugfix] button")
    await expect(page.locator("h1")).to_have_text("Bug fix")
    await expect(page.locator("#toasts")).to_contain_text("Added the Bug fix pipeline and")
    check = page.locator("#pipeline-check")
    await expect(check.locator("svg.pipeline-graph")).to_be_visible()
    await expect(check.locator("#check-summary")).to_contain_text("Valid")

    # A goto to a step that does not exist: shown with its place, and the graph still drawn.
    editor = page.locator("#f-yaml")
    text = await editor.input_value()
    broken = text.replace("onComplete: FIX", "onComplete: FIXX", 1)
    assert broken != text
    await editor.fill(broken)
    problem = check.locator(".problem-error").first
    await expect(problem).to_contain_text("FIXX")
    line = int(await problem.locator("[data-goto-line]").get_attribute("data-goto-line") or "0")
    assert broken.splitlines()[line - 1].strip() == "onComplete: FIXX"
    await problem.locator("[data-goto-line]").click()
    selected = await editor.evaluate("e => e.value.slice(e.selectionStart, e.selectionEnd)")
    assert "FIXX" in selected
    await expect(check.locator("#check-summary")).to_contain_text("1 error")
    await page.screenshot(path="/tmp/marid-pipeline-editor.png", full_page=False)
    # Saving now is refused and keeps the draft.
    await page.click("#save-pipeline")
    await expect(page.locator("#e-yaml")).to_contain_text("Not saved")
    assert await page.locator("#f-yaml").input_value() == broken
    assert await versions_of(db, workspace.id) == {"bugfix": [1]}

    # Fixed and renamed: saved as version 2, with a diff that reads as typed.
    await page.locator("#f-yaml").fill(text.replace("name: Bug fix", "name: Bug squash", 1))
    await expect(check.locator("#check-summary")).to_contain_text("Valid")
    await page.fill("#f-note", "a better name")
    await page.click("#save-pipeline")
    await expect(page.locator("#toasts")).to_contain_text("Saved version 2.")
    await expect(page.locator("h1")).to_have_text("Bug squash")
    await page.click("#versions >> a >> text=Version 2")
    await expect(page.locator(".diff .diff-add")).to_contain_text("+name: Bug squash")
    await expect(page.locator(".diff .diff-del")).to_contain_text("-name: Bug fix")

    # Import: a file loads into the editor and is checked like typing.
    source = tmp_path / "tiny.yml"
    source.write_text(SMALL)
    await page.goto(f"{base_url}/w/{workspace.slug}/pipelines/new")
    await page.set_input_files("#f-yaml-file", str(source))
    await expect(page.locator("#f-yaml")).to_have_value(SMALL)
    await expect(page.locator("#pipeline-check svg.pipeline-graph")).to_contain_text("ONLY")
    await page.click("#save-pipeline")
    await expect(page.locator("h1")).to_have_text("Tiny")
    assert await versions_of(db, workspace.id) == {"bugfix": [1, 2], "tiny": [1]}

    # Delete asks first.
    await page.click("#delete-pipeline-button")
    await page.locator("dialog[open] button", has_text="Delete pipeline").click()
    await expect(page.locator("#toasts")).to_contain_text("Deleted the pipeline Tiny.")
    assert await versions_of(db, workspace.id) == {"bugfix": [1, 2]}
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_no_pipeline_page_scrolls_sideways_on_a_phone(
    browser: Browser, base_url: str, db: Database, settings: Settings
) -> None:
    owner = await make_user(db, "pipephone")
    workspace = await make_workspace(db, owner, "pipephone")
    async with workspace_changes(db, settings, workspace.id) as session:
        await ensure_starter(session, "engineering", person(owner))
    # (axe is injected as a script of its own, which the page's CSP refuses: bypassed, as tests/web does.)
    context = await browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True)
    page = await context.new_page()
    await log_in(page, base_url, owner.email)
    await expect(page).not_to_have_url(re.compile(r"/login"))
    base = f"/w/{workspace.slug}/pipelines"
    too_wide: dict[str, int] = {}
    problems: dict[str, Any] = {}
    for path in [base, f"{base}/new", f"{base}/engineering", f"{base}/engineering/versions/1"]:
        await page.goto(base_url + path)
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[path] = width
        found = await violations(page)  # axe-core: no serious or critical violation, with real content
        if found:
            problems[path] = found
    await page.goto(base_url + f"{base}/engineering")
    await page.screenshot(path="/tmp/marid-pipeline-phone.png", full_page=True)
    await context.close()
    assert too_wide == {}
    assert problems == {}
