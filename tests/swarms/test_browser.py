"""The swarm page in a real browser: start a swarm from the composer, watch its boxes change colour live as
real workers run the tasks, the timeline appear, and a task's page show what the task wrote."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from playwright.async_api import Browser, expect
from sqlalchemy import select

from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.llm.scripted import ScriptedServer
from app.tenants.models import Membership
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.swarms.conftest import Workers, add_agents
from tests.web.test_accessibility import violations
from tests.workspaces.test_live import cookie_for

Start = Callable[..., Awaitable[Workers]]
YAML = """agent_id: yukihiro
title: Browser diamond
max_concurrent: 2
tasks:
  - {key: a, title: Start, execution_prompt: Write the first note.}
  - {key: b, title: Left, execution_prompt: Write the left note., dependencies: [a]}
  - {key: c, title: Right, execution_prompt: Write the right note., dependencies: [a]}
  - {key: d, title: Join, execution_prompt: Write the last note., dependencies: [b, c]}
"""


async def owner_of(db: Database, workspace_id: str) -> User:
    async with db.public_session() as session:
        user_id = await session.scalar(
            select(Membership.user_id).where(Membership.workspace_id == workspace_id, Membership.role == "owner")
        )
        user = await session.get(User, user_id)
    assert user is not None
    return user


async def test_the_swarm_page_goes_live(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer,
    workers: Start, browser: Browser, settings: Settings,
) -> None:  # fmt: skip
    await add_agents(db, tenant.id, "yukihiro")
    # Slow enough to see each task running before it completes.
    llm.register_key(tenant.key, StepScript(delays=dict.fromkeys("abcd", 1.0)))
    await workers()
    base, slug = gateway.url, tenant.workspace.slug
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    cookies = await cookie_for(db, settings, await owner_of(db, tenant.id))
    await context.add_cookies([{"name": k, "value": v, "url": base} for k, v in cookies.items()])
    page = await context.new_page()
    try:
        await page.goto(f"{base}/w/{slug}/swarms/new")
        await page.fill("#request", YAML)
        # The live preview redraws the graph as it is typed.
        await expect(page.locator("#swarm-preview")).to_contain_text("4 tasks · depth 3")
        await expect(page.locator("#swarm-preview g.dag-task")).to_have_count(4)
        await page.click("#swarm-form button[type=submit]")
        await expect(page.locator("h1")).to_have_text("Browser diamond")
        await expect(page.locator("[data-live-status]")).to_have_text("Live")
        # Colours follow the events: a running box shows up, then every box is completed.
        await expect(page.locator('g.dag-task[data-status="running"]').first).to_be_visible(timeout=30_000)
        for key in "abcd":
            box = page.locator(f'g.dag-task[data-key="{key}"]')
            await expect(box).to_have_attribute("data-status", "completed", timeout=60_000)
        await expect(page.locator("[data-swarm-status]")).to_have_text("completed", timeout=15_000)
        await expect(page.locator('[data-count="completed"] strong')).to_have_text("4")
        await expect(page.locator("svg.swarm-gantt g.gantt-row")).to_have_count(4)
        await page.click('g.dag-task[data-key="d"] a')
        await expect(page.locator("h1")).to_contain_text("Join")
        await expect(page.locator("[data-task-status]")).to_have_text("completed")
        await expect(page.locator("body")).to_contain_text("Write the last note.")
        swarm_url = page.url.rsplit("/tasks/", 1)[0]
    finally:
        await context.close()
    # axe on the finished swarm's pages, at a laptop's and a phone's width (axe is injected: CSP bypassed here).
    for viewport in ({"width": 1280, "height": 900}, {"width": 390, "height": 844}):
        checking = await browser.new_context(viewport=viewport, bypass_csp=True)
        await checking.add_cookies([{"name": k, "value": v, "url": base} for k, v in cookies.items()])
        page = await checking.new_page()
        try:
            for url in (swarm_url, f"{swarm_url}/tasks/b", f"{base}/w/{slug}/swarms", f"{base}/w/{slug}/swarms/new"):
                await page.goto(url)
                assert await violations(page) == [], (viewport, url)
                wider = await page.evaluate("document.documentElement.scrollWidth > window.innerWidth")
                assert not wider, (viewport, url)
        finally:
            await checking.close()
