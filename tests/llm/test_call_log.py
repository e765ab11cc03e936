"""The call log's arithmetic and durability: what a call costs (approximate where a price is unknown), and a
record written ahead to Redis reaches Postgres exactly once, through the sweep when its process died."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal

from redis.asyncio import Redis

from app.config import Settings
from app.db import Database
from app.live.bus import EventBus, EventType, Topic
from app.llm.calllog import sweep
from app.llm.catalogue import Prices, cost_of, money, parse_model_string
from app.llm.metering import CallRecord, Meter
from app.llm.spend import SpendCounters, pending_key
from tests.helpers import workspace_with
from tests.llm.gateway import calls_of


def test_cost_arithmetic() -> None:
    prices = Prices(Decimal(3), Decimal(15), Decimal("0.3"), Decimal("3.75"))
    cost = cost_of(prices, input_tokens=1_000_000, output_tokens=10, cache_read_tokens=100, cache_write_tokens=1)
    assert cost.usd == Decimal("3.00018375") and not cost.approximate
    # A price left unknown: the known part is counted, and the cost is flagged.
    partial = cost_of(
        Prices(Decimal(3), None), input_tokens=10, output_tokens=10, cache_read_tokens=0, cache_write_tokens=0
    )
    assert partial.usd == Decimal("0.00003") and partial.approximate
    unknown = cost_of(None, input_tokens=5, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0)
    assert unknown.usd == 0 and unknown.approximate
    free = cost_of(None, input_tokens=0, output_tokens=0, cache_read_tokens=0, cache_write_tokens=0)
    assert free.usd == 0 and not free.approximate
    assert money(Decimal("1234.5")) == "$1,234.50" and money(Decimal("0.0018")) == "$0.0018"
    assert str(parse_model_string("openrouter/anthropic/claude-sonnet-4.5")) == "openrouter/anthropic/claude-sonnet-4.5"
    assert parse_model_string("openrouter/anthropic/x").model == "anthropic/x"  # type: ignore[union-attr]
    assert parse_model_string("gpt-4.1") is None and parse_model_string("/x") is None


def test_the_meter_reads_openai_usage() -> None:
    meter = Meter()
    meter.openai_choice({"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1"}, {"index": 1, "id": "c2"}]}})
    meter.openai_choice({"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}})
    meter.openai_choice({"index": 0, "delta": {}, "finish_reason": "tool_calls"})
    meter.openai_usage(
        {
            "prompt_tokens": 100,
            "completion_tokens": 7,
            "prompt_tokens_details": {"cached_tokens": 60, "cache_write_tokens": 10},
        }
    )
    assert meter.tool_calls == 2 and meter.stop_reason == "tool_calls" and meter.first_token is not None
    assert (meter.input_tokens, meter.cache_read_tokens, meter.cache_write_tokens, meter.output_tokens) == (
        30,
        60,
        10,
        7,
    )


async def test_a_record_left_pending_is_stored_once_by_the_sweep(db: Database, settings: Settings) -> None:
    workspace, _ = await workspace_with(db, f"sweep-{secrets.token_hex(3)}", [])
    redis = Redis.from_url(settings.redis_url)
    try:
        spend = SpendCounters(redis, db)
        record = CallRecord(
            call_id=uuid.uuid4(), at=datetime.now(UTC), workspace_id=workspace.id, token_id=None, agent_id="finn",
            run_id="run_9", step_id="s", session_id=None, model="openai/gpt-4.1", provider="openai",
            input_tokens=10, output_tokens=2, cost=Decimal("0.00005"),
        )  # fmt: skip
        # The gateway wrote it ahead, then its process died before storing it.
        await spend.write_ahead(record)
        assert await redis.xlen(pending_key(workspace.id)) == 1
        assert await sweep(db, EventBus(redis), spend, older_than=0) >= 1
        assert await sweep(db, EventBus(redis), spend, older_than=0) == 0
        assert await redis.xlen(pending_key(workspace.id)) == 0
        (call,) = await calls_of(db, workspace.id)
        assert call.call_id == record.call_id and call.cost == Decimal("0.00005") and call.run_id == "run_9"
        events = await EventBus(redis).read_since(workspace.id, [Topic.usage()])
        assert [event.type for _, _, event in events] == [EventType.LLM_CALL]
        assert events[0][2].payload["call_id"] == str(record.call_id)
    finally:
        await redis.aclose()
