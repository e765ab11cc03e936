"""The engine's fixtures: those of tests/execution (scripted provider, gateway, tenant, process-runner deps)
and a flushed Redis database for the queues."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.config import Settings
from tests.execution.conftest import channels, deps, files_root, redis
from tests.llm.conftest import gateway, gateway_settings, llm, tenant
from tests.runs.harness import queue_url


@pytest.fixture
async def queue_redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(queue_url(settings))
    await client.flushdb()
    yield client
    await client.flushdb()
    await client.aclose()


__all__ = ["channels", "deps", "files_root", "gateway", "gateway_settings", "llm", "queue_redis", "redis", "tenant"]
