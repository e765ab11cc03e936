"""In a real browser, against ``marid web`` and a worker on the demo model: a run started from its pipeline's
page streams its steps in live (text, tool calls as cards), its status and timeline follow without a reload,
each step's output opens, a step's page shows the files it changed; no run page scrolls sideways on a phone."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator
from typing import Any

import pytest
from playwright.async_api import Browser, expect

from app.config import Settings
from app.db import Database
from tests.browser import create_workspace, log_in, sign_up, unique_email
from tests.runs.stack import Stack, demo_workspace, run_stack
from tests.web.test_accessibility import violations

PHONE = {"width": 390, "height": 844}


@pytest.fixture(scope="module")
def stack(server_env: dict[str, str], settings: Settings) -> Iterator[Stack]:
    with run_stack(server_env, settings) as running:
        yield running


@pytest.mark.browser
async def test_a_run_started_from_the_page_streams_live(browser: Browser, stack: Stack, db: Database) -> None:
    owner, workspace = await demo_workspace(db, stack, "runlive")
    context = await browser.new_context(bypass_csp=True)  # for axe, injected at the end
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    await log_in(page, stack.base_url, owner.email)
    await expect(page).not_to_have_url(re.compile(r"/login"))

    await page.goto(f"{stack.base_url}/w/{workspace.slug}/pipelines/quick")
    await page.fill("#f-task", "A <b>save</b> button that saves")
    await page.click("#start-run")
    await expect(page.locator("#toasts")).to_contain_text("Started a run of Quick.")
    await expect(page.locator(".run-task")).to_have_text("A <b>save</b> button that saves")  # text, not markup
    await expect(page.locator("[data-live-status]")).to_have_text("Live")

    stream = page.locator("#run-stream")
    # Steps stream in as they happen: each step's start, the demo model's tool calls as cards, each end.
    await expect(stream.locator(".stream-step[data-step=SPEC]").first).to_contain_text("started by", timeout=60_000)
    # SPEC's output, opened while the run goes on, stays open as the page re-reads itself.
    spec_output = page.locator("details.step-output").filter(has_text="SPEC:")
    await expect(spec_output).to_be_visible(timeout=30_000)
    await spec_output.locator("summary").click()
    await expect(stream.locator(".tool-card[data-step=SPEC]").first).to_be_visible(timeout=30_000)
    await expect(stream.locator(".tool-card code").first).to_have_text(re.compile("write|complete"))
    await expect(stream.locator(".run-end")).to_have_text("■ The run completed.", timeout=90_000)
    # The state section re-read itself on the way: status, steps, costs, the timeline, without a reload.
    await expect(page.locator("#run-status")).to_have_text("completed", timeout=15_000)
    await expect(page.locator("#steps tr[data-status=completed]")).to_have_count(3)
    await expect(page.locator("svg.run-timeline rect.bar.status-completed")).to_have_count(3)
    await expect(spec_output).to_have_attribute("open", "")
    order = await stream.locator(".stream-step").evaluate_all("items => items.map(i => i.textContent.trim())")
    starts = [line.split()[1] for line in order if line.startswith("▶")]
    assert starts == ["SPEC", "BUILD", "CHECK"], order
    await page.screenshot(path="/tmp/marid-run-live.png", full_page=True)
    assert await violations(page) == []  # axe-core, on the finished run's page with all its parts

    # A step's output opens in place; its own page has the input, the outputs and the files it changed.
    check = page.locator("details.step-output").filter(has_text="CHECK")
    await check.locator("summary").click()
    await expect(check.locator(".output-text")).to_have_text("APPROVED")
    # The live log, kept at its end by the reader, stayed there as items arrived.
    assert await stream.evaluate("log => log.scrollHeight - log.scrollTop - log.clientHeight < 60")
    await expect(page.locator("#files")).to_contain_text("NOTES.md")
    await page.click("#steps a >> text=SPEC")
    await expect(page.locator("h1")).to_contain_text("SPEC")
    await expect(page.locator("#outputs")).to_contain_text("spec")
    await expect(page.locator("#input")).to_contain_text("A <b>save</b> button that saves")
    await expect(page.locator("#diff .diff-add").first).to_be_visible()
    await expect(page.locator("#diff")).to_contain_text("NOTES.md")
    assert await violations(page) == []

    # The runs list has it, and a reload replays the stream from the start.
    await page.goto(f"{stack.base_url}/w/{workspace.slug}/runs")
    await expect(page.locator("tr[data-run] .run-status")).to_have_text("completed")
    await page.click("tr[data-run] a")
    await expect(page.locator("#run-stream .run-end")).to_have_text("■ The run completed.")

    # Run it again, and watch it from the list: the row follows the run without a reload.
    await page.click("#restart-run")
    await page.locator("#confirm-dialog #confirm-ok").click()
    await expect(page.locator("#toasts")).to_contain_text("Started the run again.")
    again = page.url.rsplit("/", 1)[1]
    await page.goto(f"{stack.base_url}/w/{workspace.slug}/runs")
    row = page.locator(f"tr[data-run='{again}'] .run-status")
    assert await row.inner_text() != "completed", "the run is still under way when the list opens"
    await expect(page.locator("#runs [data-live-status]")).to_have_text("Live")
    await expect(row).to_have_text("completed", timeout=60_000)
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_onboarding_ends_with_a_first_run_on_the_demo_model(browser: Browser, stack: Stack) -> None:
    """A new user, no key: the last onboarding step starts the engineering pipeline, and its steps stream in."""
    context = await browser.new_context()
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    slug = f"first-{secrets.token_hex(3)}"
    await sign_up(page, stack.base_url, unique_email("first"), "Fia First")
    await create_workspace(page, "First", slug)
    await expect(page.locator("h1")).to_have_text("Invite your team")
    await page.click("text=Skip for now")
    await expect(page.locator("h1")).to_have_text("Connect an LLM")
    await expect(page.locator("main")).to_contain_text("The demo model is ready")  # offered to every new workspace
    await page.click("#skip")
    await expect(page.locator("h1")).to_have_text("Add your team of agents")
    await page.click("#add-team")
    await expect(page.locator("h1")).to_have_text("Watch a first run")
    await expect(page.locator("main")).to_contain_text("Runs on demo/demo")
    await page.click("#start-first-run")
    await expect(page.locator("#toasts")).to_contain_text("Your first run has started")
    await expect(page.locator("h1")).to_contain_text("Engineering")
    stream = page.locator("#run-stream")
    await expect(stream.locator(".stream-step.done[data-step=SPEC]")).to_contain_text("completed", timeout=60_000)
    await expect(stream.locator(".stream-step[data-step=DESIGN]").first).to_contain_text("started", timeout=30_000)
    await expect(page.locator("#steps tr[data-step=SPEC][data-status=completed]")).to_have_count(1)
    await page.screenshot(path="/tmp/marid-first-run.png", full_page=False)
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_no_run_page_scrolls_sideways_on_a_phone_in_the_dark(
    browser: Browser, stack: Stack, db: Database
) -> None:
    owner, workspace = await demo_workspace(db, stack, "runphone")
    # (axe is injected as a script of its own, which the page's CSP refuses: bypassed, as tests/web does.)
    # In the dark theme (the laptop test checks the light one).
    context = await browser.new_context(
        viewport=PHONE, is_mobile=True, has_touch=True, bypass_csp=True, color_scheme="dark"
    )
    page = await context.new_page()
    await log_in(page, stack.base_url, owner.email)
    await expect(page).not_to_have_url(re.compile(r"/login"))
    await page.goto(f"{stack.base_url}/w/{workspace.slug}/runs")
    await page.select_option("#f-pipeline", "quick")
    await page.fill("#f-task", "A task with a rather long description " * 4)
    await page.click("#start-run")
    await expect(page.locator("#run-stream .run-end")).to_be_visible(timeout=90_000)
    await expect(page.locator("#run-status")).to_have_text("completed", timeout=15_000)
    run_url = page.url
    step_href = await page.locator("#steps a").first.get_attribute("href")
    too_wide: dict[str, int] = {}
    problems: dict[str, Any] = {}
    pages = [f"{stack.base_url}/w/{workspace.slug}/runs", run_url, f"{stack.base_url}{step_href}"]
    pages.append(f"{stack.base_url}/w/{workspace.slug}/onboarding/run")
    for url in pages:
        await page.goto(url)
        width = await page.evaluate("document.documentElement.scrollWidth")
        if width > PHONE["width"]:
            too_wide[url] = width
        found = await violations(page)  # axe-core: no serious or critical violation, with the run's content
        if found:
            problems[url] = found
    await page.goto(run_url)
    await page.screenshot(path="/tmp/marid-run-phone.png", full_page=True)
    await context.close()
    assert too_wide == {}
    assert problems == {}
