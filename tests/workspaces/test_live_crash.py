"""No committed change is invisible to a live page (issue 9, part 2): the web process dies right after it
committed a change and before it published it, and the dashboard that was open still ends up showing the
change, exactly once.

The crash is real: the web process kills itself with SIGKILL at that very point (``MARID_TEST_CRASH_AFTER_COMMIT``,
honoured only when ``MARID_ENV=test``), and a new one starts on the same port.
"""

from __future__ import annotations

import secrets

import httpx
import pytest
from playwright.async_api import Browser, expect
from sqlalchemy import select

from app.audit.models import AuditOutbox
from app.audit.relay import copy_into_log
from app.audit.service import record
from app.config import Settings
from app.db import Database
from app.embedded import free_port
from app.tenants.models import Workspace
from tests.helpers import make_user, make_workspace, person
from tests.servers import web_server, worker_process
from tests.workspaces.test_live import cookie_for


@pytest.mark.browser
async def test_a_change_committed_just_before_a_crash_reaches_the_open_dashboard(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    owner = await make_user(db, "crash-owner", name="Crash Owner")
    workspace = await make_workspace(db, owner, "crash")
    cookies = await cookie_for(db, settings, owner)
    port = free_port()
    context = await browser.new_context()
    await context.add_cookies(
        [{"name": name, "value": value, "url": f"http://127.0.0.1:{port}"} for name, value in cookies.items()]
    )
    page = await context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    crashing = {**server_env, "MARID_TEST_CRASH_AFTER_COMMIT": "settings.changed"}
    new_name = f"Renamed {secrets.token_hex(3)}"
    sentence = "Crash Owner renamed the workspace"
    items = page.locator("#activity-feed li", has_text=sentence)
    with worker_process(server_env):
        with web_server(crashing, port=port) as base:
            await page.goto(f"{base}/w/{workspace.slug}")
            await page.wait_for_function("document.querySelector('[sse-connect]')['htmx-internal-data'] !== undefined")
            await expect(page.locator("[data-live-status]")).to_have_text("Live")
            async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=10) as client:
                await client.get(f"/w/{workspace.slug}/settings")
                token = client.cookies.get(settings.csrf_cookie) or ""
                with pytest.raises(httpx.TransportError):  # the process died mid-request
                    await client.post(
                        f"/w/{workspace.slug}/settings", data={"name": new_name}, headers={"X-CSRF-Token": token}
                    )
            await expect(page.locator("[data-live-status]")).to_have_text("Reconnecting…")
        # The change was committed before the crash.
        async with db.public_session() as session:
            assert await session.scalar(select(Workspace.name).where(Workspace.id == workspace.id)) == new_name
        await expect(items).to_have_count(0)
        with web_server(server_env, port=port):
            # The tab reconnects by itself; the change shows up without a reload...
            await expect(items).to_have_count(1, timeout=30_000)
            await expect(page.locator("[data-live-status]")).to_have_text("Live")
            # ...once, however it arrived (the page's re-read of the feed, the stream, or both).
            await page.wait_for_timeout(2_000)
            await expect(items).to_have_count(1)
    assert errors == []
    await context.close()


@pytest.mark.browser
async def test_on_reconnecting_the_dashboard_reads_its_feed_again_from_the_log(
    browser: Browser, db: Database, settings: Settings, server_env: dict[str, str]
) -> None:
    """An entry that reached the log but whose event never went out (nothing relays it here: no worker) shows up
    when the page's stream reconnects, because the page re-reads its feed from the database; once."""
    owner = await make_user(db, "reread-owner", name="Reread Owner")
    workspace = await make_workspace(db, owner, "reread")
    cookies = await cookie_for(db, settings, owner)
    port = free_port()
    context = await browser.new_context()
    await context.add_cookies(
        [{"name": name, "value": value, "url": f"http://127.0.0.1:{port}"} for name, value in cookies.items()]
    )
    page = await context.new_page()
    items = page.locator("#activity-feed li", has_text="Reread Owner changed the workspace settings")
    with web_server(server_env, port=port) as base:
        await page.goto(f"{base}/w/{workspace.slug}")
        await expect(page.locator("[data-live-status]")).to_have_text("Live")
    await expect(page.locator("[data-live-status]")).to_have_text("Reconnecting…")
    # Into the log, as a relay that died before publishing leaves it (its outbox row stays for a sweep).
    async with db.public_session() as session:
        record(session, workspace.id, "settings.changed", person(owner), {"name": "x"})
    async with db.public_session() as session:
        rows = list(await session.scalars(select(AuditOutbox).where(AuditOutbox.workspace_id == workspace.id)))
    await copy_into_log(db, workspace.id, rows)
    with web_server(server_env, port=port):
        await expect(page.locator("[data-live-status]")).to_have_text("Live", timeout=20_000)
        await expect(items).to_have_count(1, timeout=10_000)
        await expect(page.locator(".empty-state")).to_have_count(0)
    await context.close()
