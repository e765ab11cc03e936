"""A provider key never leaves Marid: not in any answer (success, error, error event), not in any log line (all of
them, at DEBUG, while the gateway, the SDKs and the pages run), not in any event of the workspace's streams, not
in the audit log or the call log, not in any page or API answer. The test greps for the key."""

from __future__ import annotations

import logging

import openai
import pytest
from redis.asyncio import Redis
from sqlalchemy import select
from starlette.testclient import TestClient

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus, Topic
from app.llm.models import LlmCall, LlmProvider
from app.llm.scripted import HttpError, Reply, Script, ScriptedServer, StreamError, ToolCall
from app.main import create_app
from tests.helpers import http_client, log_in, make_user
from tests.llm.gateway import USER, GatewayServer, Tenant, calls_of, mint


async def test_the_key_appears_in_no_answer_log_event_row_or_page(
    db: Database,
    settings: Settings,
    llm: ScriptedServer,
    gateway: GatewayServer,
    tenant: Tenant,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    keys = [tenant.key, tenant.anthropic_key]
    # Providers that echo the key back, as some proxies do in their errors.
    llm.register_key(
        tenant.key,
        Script.sequence(
            Reply(text="Fine.", tool_calls=[ToolCall(name="write", arguments={"path": "a"})]),
            HttpError(status=401, message=f"Incorrect API key provided: {tenant.key}"),
            StreamError(after_chunks=1, message=f"quota of key {tenant.key} exhausted"),
            Reply(text=f"Echo: {tenant.key}"),
        ),
    )
    llm.register_key(
        tenant.anthropic_key,
        Script.sequence(
            Reply(text="Bonjour."), HttpError(status=403, message=f"key {tenant.anthropic_key} may not do that")
        ),
    )
    token = await mint(db, settings, tenant.id)
    seen: list[str] = []
    async with gateway.client(token.token) as client:
        stream = await client.chat.completions.create(model="scripted/coder", messages=USER, stream=True)
        seen += [chunk.model_dump_json() async for chunk in stream]
        with pytest.raises(openai.InternalServerError) as unauthorized:
            await client.chat.completions.create(model="scripted/coder", messages=USER)
        seen.append(str(unauthorized.value.body) + str(unauthorized.value))
        with pytest.raises(openai.APIError) as mid_stream:
            stream = await client.chat.completions.create(model="scripted/coder", messages=USER, stream=True)
            async for chunk in stream:
                seen.append(chunk.model_dump_json())
        seen.append(str(mid_stream.value.body) + str(mid_stream.value))
        echoed = await client.chat.completions.create(model="scripted/coder", messages=USER)
        seen.append(echoed.model_dump_json())
        seen.append((await client.chat.completions.create(model="claude/coder", messages=USER)).model_dump_json())
        with pytest.raises(openai.InternalServerError) as forbidden:
            await client.chat.completions.create(model="claude/coder", messages=USER)
        seen.append(str(forbidden.value.body) + str(forbidden.value))
    assert "[redacted]" in echoed.choices[0].message.content  # type: ignore[operator]
    calls = await calls_of(db, tenant.id, 6)

    # Pages and the API, as the owner sees them.
    async with db.tenant_session(tenant.id) as session:
        providers = list(await session.scalars(select(LlmProvider)))
        audit = [str(event.details) for event in await session.scalars(select(AuditEvent))]
        rows = [str(vars(call)) for call in await session.scalars(select(LlmCall))]
    owner = await make_user(db, "keyholder")
    from tests.helpers import add_member

    await add_member(db, tenant.workspace, owner, "owner")
    slug = tenant.workspace.slug
    with http_client(create_app(settings)) as browser:
        log_in(browser, owner.email)
        for path in [f"/w/{slug}/llm", f"/w/{slug}/usage", f"/w/{slug}/usage/calls.csv", f"/w/{slug}/audit"] + [
            f"/w/{slug}/llm/providers/{provider.id}" for provider in providers
        ]:
            page = browser.get(path)
            assert page.status_code == 200, path
            seen.append(page.text)
        for path in ["llm/providers", "llm/calls", "llm/usage", "llm/budget", "audit"]:
            seen.append(browser.get(f"/api/v1/workspaces/{slug}/{path}").text)
        seen.append(_test_connection(browser, slug, providers[0].id))

    redis = Redis.from_url(settings.redis_url)
    try:
        events = await EventBus(redis).read_since(tenant.id, [Topic.usage(), Topic.activity()])
        pending = [str(entry) async for entry in redis.scan_iter(match=f"marid:ws:{tenant.id}:*")]
    finally:
        await redis.aclose()
    assert len(events) >= 6
    everything = {
        "answers and pages": "\n".join(seen),
        "logs": "\n".join(record.getMessage() + str(record.args) for record in caplog.records) + caplog.text,
        "events": "\n".join(event.model_dump_json() for _, _, event in events),
        "redis keys": "\n".join(pending),
        "audit log": "\n".join(audit),
        "call log": "\n".join(rows + [call.error for call in calls]),
        "sealed columns": "\n".join(provider.key_preview + (provider.api_key_sealed or "") for provider in providers),
    }
    leaks = {where: key[:12] for where, text in everything.items() for key in keys if key in text}
    assert leaks == {}
    assert "redacted" in "\n".join(call.error for call in calls)
    assert len(caplog.records) > 10  # the logs were captured (and would have shown a key)


def _test_connection(browser: TestClient, slug: str, provider_id: object) -> str:
    page = browser.get(f"/w/{slug}/llm/providers/{provider_id}")
    from tests.helpers import csrf_of

    response = browser.post(f"/w/{slug}/llm/providers/{provider_id}/test", data={"csrf_token": csrf_of(page.text)})
    return response.text
