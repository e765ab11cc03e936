"""The call log is live: each call through the gateway arrives on the usage page's stream as an escaped row, for
those who may see usage, and only rows matching the page's filters; viewers cannot open the stream."""

from __future__ import annotations

import httpx2

from app.config import Settings
from app.db import Database
from app.llm.scripted import Reply, Script, ScriptedServer
from tests.helpers import add_member, make_user
from tests.live.sse_client import SSEReader
from tests.llm.gateway import USER, GatewayServer, Tenant, mint
from tests.workspaces.test_live import cookie_for


async def test_calls_arrive_on_the_usage_stream(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    member, viewer = await make_user(db, "spender"), await make_user(db, "watcher")
    await add_member(db, tenant.workspace, member, "member")
    await add_member(db, tenant.workspace, viewer, "viewer")
    llm.register_key(tenant.key, Script.always(Reply(text="ok")))
    slug = tenant.workspace.slug
    async with httpx2.AsyncClient(base_url=gateway.url, cookies=await cookie_for(db, settings, member)) as browser:
        async with (
            browser.stream("GET", f"/w/{slug}/usage/events") as everything,
            browser.stream("GET", f"/w/{slug}/usage/events", params={"agent": "someone-else"}) as filtered,
        ):
            assert everything.status_code == 200 and everything.headers["content-type"].startswith("text/event-stream")
            reader, quiet = SSEReader(everything.aiter_bytes()), SSEReader(filtered.aiter_bytes())
            await reader.next()  # the stream's opening (retry and cursor)
            await quiet.next()
            token = await mint(db, settings, tenant.id, agent="finn")
            async with gateway.client(token.token) as client:
                await client.chat.completions.create(model="scripted/priced", messages=USER)
                try:  # a model string is the caller's text: refused, logged, and shown escaped
                    await client.chat.completions.create(model="nowhere/<b>bold</b>", messages=USER)
                except Exception:
                    pass
            first, second = await reader.events(2)
            assert first.event == second.event == "LLM_CALL"
            row = "\n".join(first.data)
            assert row.startswith("<tr data-feed-item") and "scripted/priced" in row and "finn" in row
            refused = "\n".join(second.data)
            assert "nowhere/&lt;b&gt;bold&lt;/b&gt;" in refused and "<b>" not in refused and "refused" in refused
            # The filtered stream's messages for these calls are empty: nothing to add to that page.
            assert [message.data for message in await quiet.events(2)] == [[""], [""]]
            await reader.aclose()
            await quiet.aclose()
    async with httpx2.AsyncClient(base_url=gateway.url, cookies=await cookie_for(db, settings, viewer)) as browser:
        response = await browser.get(f"/w/{slug}/usage/events")
        assert response.status_code == 403
