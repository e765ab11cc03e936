"""In a real browser: what the worker publishes appears in the activity feed without a reload, and after the
connection is cut, every event published meanwhile appears exactly once, in order."""

from __future__ import annotations

import secrets

import pytest
from playwright.async_api import Browser, Page, expect

from app.config import Settings
from app.db import Database
from app.embedded import free_port
from app.mail.jobs import deliver_mail
from app.mail.service import queue_mail
from app.queues import Enqueuer
from tests.helpers import make_user, make_workspace
from tests.servers import web_server, worker_process
from tests.workspaces.test_live import cookie_for


async def send_invitation_mail(db: Database, settings: Settings, workspace_id: str, label: str) -> None:
    """Queue a workspace's mail and nudge the worker, exactly as the invite form does."""
    async with db.public_session() as session:
        await queue_mail(
            session, kind="invitation", to=f"{label}@example.com", subject=f"Invitation {label}",
            body="...", workspace_id=workspace_id,
        )  # fmt: skip
    jobs = Enqueuer(settings.redis_url)
    await jobs.enqueue(deliver_mail)
    await jobs.close()


async def feed(page: Page) -> list[str]:
    return await page.locator("#activity-feed li span").all_inner_texts()


@pytest.mark.browser
async def test_worker_events_stream_live_and_survive_a_cut(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    owner = await make_user(db, "live-owner")
    workspace = await make_workspace(db, owner, "stream")
    cookies = await cookie_for(db, settings, owner)
    port = free_port()
    context = await browser.new_context()
    await context.add_cookies(
        [{"name": name, "value": value, "url": f"http://127.0.0.1:{port}"} for name, value in cookies.items()]
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    tag = secrets.token_hex(3)
    with worker_process(server_env):
        with web_server(server_env, port=port) as base:
            await page.goto(f"{base}/w/{workspace.slug}")
            await expect(page.locator(".empty-state")).to_be_visible()
            await page.wait_for_function("document.querySelector('[sse-connect]')['htmx-internal-data'] !== undefined")
            await page.wait_for_timeout(300)  # the stream is open
            await expect(page.locator("[data-live-status]")).to_have_text("Live")
            await send_invitation_mail(db, settings, workspace.id, f"first-{tag}")
            first = page.locator("#activity-feed li", has_text=f"first-{tag}@example.com")
            await expect(first).to_have_count(1, timeout=15_000)
            await expect(page.locator(".empty-state")).to_have_count(0)
        # The web process is gone: the tab's connection is cut. The worker keeps publishing.
        for index in range(1, 4):
            await send_invitation_mail(db, settings, workspace.id, f"missed{index}-{tag}")
        await expect(page.locator("[data-live-status]")).to_have_text("Reconnecting…")
        with web_server(server_env, port=port):
            # The tab reconnects by itself (no reload) and resumes from the last event it saw.
            await expect(page.locator("#activity-feed li", has_text=f"missed3-{tag}")).to_have_count(1, timeout=20_000)
            await expect(page.locator("[data-live-status]")).to_have_text("Live")
            await page.wait_for_timeout(1000)  # anything duplicated would have arrived by now
            texts = [text for text in await feed(page) if tag in text]
    expected = [
        f"Delivered “Invitation {label}-{tag}” to {label}-{tag}@example.com"
        for label in ("missed3", "missed2", "missed1", "first")
    ]
    assert texts == expected, texts
    assert errors == []
    await page.screenshot(path="/tmp/marid-live-feed.png", full_page=True)
    await context.close()


@pytest.mark.browser
async def test_a_removed_member_is_shown_the_door_live(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    import httpx

    from tests.helpers import add_member

    owner, member = await make_user(db, "door-owner"), await make_user(db, "door-member")
    workspace = await make_workspace(db, owner, "door")
    await add_member(db, workspace, member, "member")
    port = free_port()
    context = await browser.new_context()
    await context.add_cookies(
        [
            {"name": name, "value": value, "url": f"http://127.0.0.1:{port}"}
            for name, value in (await cookie_for(db, settings, member)).items()
        ]
    )
    page = await context.new_page()
    with web_server(server_env, port=port) as base:
        await page.goto(f"{base}/w/{workspace.slug}")
        await expect(page.locator("main h1")).to_have_text(workspace.name)
        await page.wait_for_timeout(500)  # the stream is open
        async with httpx.AsyncClient(base_url=base, cookies=await cookie_for(db, settings, owner)) as owner_client:
            await owner_client.get(f"/w/{workspace.slug}/members")
            token = owner_client.cookies.get(settings.csrf_cookie) or ""
            removed = await owner_client.post(
                f"/w/{workspace.slug}/members/{member.id}/remove", headers={"X-CSRF-Token": token}
            )
            assert removed.status_code in (200, 204, 303)
        # Without touching the page, it learns it is no longer theirs.
        await expect(page.locator("main h1")).to_have_text("There is nothing at this address", timeout=10_000)
    await context.close()
