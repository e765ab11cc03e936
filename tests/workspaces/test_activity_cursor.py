"""The dashboard's stream cursor is "a few seconds ago" by the clock, not a Redis read: an event published now is
after it, and one published earlier than the margin is before it (it is in the page's list instead)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.live.bus import EventBus, EventType, Topic, parse_stream_id
from app.live.sse import parse_cursor
from app.workspaces.live import CURSOR_MARGIN_MS, activity_cursor
from tests.conftest import Services


@pytest.fixture
async def bus(services: Services) -> AsyncIterator[EventBus]:
    redis = Redis.from_url(services.redis.url)
    yield EventBus(redis)
    await redis.aclose()


def test_the_cursor_is_the_margin_before_now() -> None:
    topic = Topic.activity()
    assert parse_cursor(activity_cursor(now_ms=1_700_000_000_000), [topic]) == {topic: "1699999995000-0"}
    assert parse_cursor(activity_cursor(now_ms=10), [topic]) == {topic: "0-0"}  # never before the first id


async def test_an_event_published_now_comes_after_the_cursor(bus: EventBus) -> None:
    topic = Topic.activity()
    cursor = parse_stream_id(parse_cursor(activity_cursor(), [topic])[topic])
    published = parse_stream_id(await bus.publish("k9tl8kkk50wt", topic, EventType.ACTIVITY, {"audit_id": 1}))
    assert published > cursor
    # Redis's clock and this process's agree here to well within the margin.
    assert abs(published[0] - time.time_ns() // 1_000_000) < CURSOR_MARGIN_MS
