"""Budgets: a monthly cap per workspace and a cap per run. Past a cap the gateway refuses with a clear
OpenAI-shaped error (never retried, costing nothing); at 80 % and at 100 % a warning goes out once, as an audit
entry and a live event."""

from __future__ import annotations

from decimal import Decimal

import openai
import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.live.bus import EventBus, EventType, Topic
from app.llm import budget
from app.llm.scripted import Reply, Script, ScriptedServer, Usage
from tests.llm.gateway import SETUP, USER, GatewayServer, Tenant, calls_of, mint, until

# 500 input tokens at $3/M and 100 output at $15/M: $0.003 a call.
CALL = Reply(text="ok", usage=Usage(prompt_tokens=500, completion_tokens=100))


async def _set_cap(db: Database, tenant: Tenant, cap: str) -> None:
    async with db.tenant_session(tenant.id) as session:
        await budget.set_monthly_cap(session, actor=SETUP, cap=budget.parse_cap(cap))


async def _actions(db: Database, tenant: Tenant) -> list[AuditEvent]:
    async with db.tenant_session(tenant.id) as session:
        return list(
            await session.scalars(
                select(AuditEvent)
                .where(AuditEvent.action.in_(["llm.budget_warning", "llm.budget_reached"]))
                .order_by(AuditEvent.id)
            )
        )


async def test_the_monthly_cap_stops_calls_and_warns_at_80_and_100_percent(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(tenant.key, Script.always(CALL))
    await _set_cap(db, tenant, "0.01")
    token = await mint(db, settings, tenant.id)
    async with gateway.client(token.token, max_retries=2) as client:
        for _ in range(3):  # $0.003, $0.006, $0.009: the third crosses 80 %
            await client.chat.completions.create(model="scripted/priced", messages=USER)
        found: list[AuditEvent] = []

        async def warned() -> bool:
            found[:] = await _actions(db, tenant)
            return len(found) == 1

        await until(warned)
        assert found[0].action == "llm.budget_warning"
        assert found[0].details["percent"] == "90" and found[0].details["cap"] == "$0.01"
        # Under the cap still ($0.009 < $0.01): this one goes, and reaches it.
        await client.chat.completions.create(model="scripted/priced", messages=USER)
        llm.clear_requests()
        with pytest.raises(openai.RateLimitError) as refused:
            await client.chat.completions.create(model="scripted/priced", messages=USER)
    assert "budget exceeded: this workspace's monthly LLM budget of $0.01 is spent ($0.012 this month)" in str(
        refused.value
    )
    assert refused.value.code == "insufficient_quota"
    # Not retried (x-should-retry: false), and no provider saw it.
    assert llm.requests == []
    calls = await calls_of(db, tenant.id, 5)
    assert [call.status for call in calls] == ["ok", "ok", "ok", "ok", "refused"]
    assert calls[-1].cost == 0 and calls[-1].http_status == 429
    assert sum(call.cost for call in calls) == Decimal("0.012")

    async def reached() -> bool:
        found[:] = await _actions(db, tenant)
        return len(found) == 2

    await until(reached)
    assert [event.action for event in found] == ["llm.budget_warning", "llm.budget_reached"]
    redis = Redis.from_url(settings.redis_url)
    try:
        events = await EventBus(redis).read_since(tenant.id, [Topic.usage()])
    finally:
        await redis.aclose()
    warnings = [event for _, _, event in events if event.type == EventType.LLM_BUDGET_WARNING]
    assert [event.payload["level"] for event in warnings] == [80, 100]
    assert len([event for _, _, event in events if event.type == EventType.LLM_CALL]) == 5


async def test_a_run_cap_stops_that_run_only(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(tenant.key, Script.always(CALL))
    first_step = await mint(db, settings, tenant.id, run="run_capped", step="s1", run_cap=Decimal("0.005"))
    async with gateway.client(first_step.token) as client:
        await client.chat.completions.create(model="scripted/priced", messages=USER)
        await client.chat.completions.create(model="scripted/priced", messages=USER)  # $0.003 < $0.005: goes
        with pytest.raises(openai.RateLimitError, match="this run.s LLM budget of \\$0.005 is spent"):
            await client.chat.completions.create(model="scripted/priced", messages=USER)
    # The next step of the same run is stopped too; another run is not.
    next_step = await mint(db, settings, tenant.id, run="run_capped", step="s2", run_cap=Decimal("0.005"))
    async with gateway.client(next_step.token) as client:
        with pytest.raises(openai.RateLimitError, match="budget exceeded"):
            await client.chat.completions.create(model="scripted/priced", messages=USER)
    other = await mint(db, settings, tenant.id, run="run_other", run_cap=Decimal("0.005"))
    async with gateway.client(other.token) as client:
        await client.chat.completions.create(model="scripted/priced", messages=USER)


async def test_the_spend_total_is_rebuilt_from_the_call_log(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    """Redis loses the running total (an eviction, a restart): the next call sums the log in Postgres."""
    llm.register_key(tenant.key, Script.always(CALL))
    await _set_cap(db, tenant, "0.01")
    token = await mint(db, settings, tenant.id)
    async with gateway.client(token.token) as client:
        for _ in range(4):
            await client.chat.completions.create(model="scripted/priced", messages=USER)
        await calls_of(db, tenant.id, 4)
        redis = Redis.from_url(settings.redis_url)
        try:
            keys = [key async for key in redis.scan_iter(match=f"marid:ws:{tenant.id}:llm:spend:*")]
            assert len(keys) == 1
            await redis.delete(*keys)
        finally:
            await redis.aclose()
        with pytest.raises(openai.RateLimitError, match=r"\$0.012 this month"):
            await client.chat.completions.create(model="scripted/priced", messages=USER)
