"""Fixtures for the event bus and SSE tests: the session's real Redis, a fresh workspace id per test."""

from __future__ import annotations

import secrets
import string
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.live.bus import EventBus
from app.live.sse import Hub
from tests.conftest import Services

ALPHABET = string.ascii_lowercase + string.digits


def new_workspace_id() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(12))


@pytest.fixture(scope="session")
async def redis(services: Services) -> AsyncIterator[Redis]:
    client = Redis.from_url(services.redis.url)
    yield client
    await client.aclose()


@pytest.fixture
def workspace_id() -> str:
    return new_workspace_id()


@pytest.fixture
def bus(redis: Redis) -> EventBus:
    return EventBus(redis)


@pytest.fixture
async def hub(redis: Redis) -> AsyncIterator[Hub]:
    hub = Hub(redis, heartbeat=0.2, queue_size=64, batch=16)
    yield hub
    await hub.close()
