"""Real worker processes on a Redis database of their own, so no other test's worker takes their jobs.

Jobs and queues are waited for in Redis itself (lists the test jobs fill, arq's health keys), never slept for.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager

import pytest
from redis.asyncio import Redis

from app.embedded.util import stop_process
from app.queues import Enqueuer, Queue
from tests.conftest import Services
from tests.mail.conftest import smtp_server  # noqa: F401 (the real SMTP server, a fixture)

# Redis database 0 is everyone else's (the live tests run `marid worker` on it).
WORKER_REDIS_DB = 7


@pytest.fixture
def worker_redis_url(services: Services) -> str:
    return services.redis.url.rsplit("/", 1)[0] + f"/{WORKER_REDIS_DB}"


@pytest.fixture
async def redis(worker_redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(worker_redis_url, decode_responses=True)
    await client.flushdb()
    yield client
    # Jobs handed back by stopped workers would otherwise wait for the next test.
    await client.flushdb()
    await client.aclose()


@pytest.fixture
async def jobs(worker_redis_url: str, redis: Redis) -> AsyncIterator[Enqueuer]:
    enqueuer = Enqueuer(worker_redis_url)
    yield enqueuer
    await enqueuer.close()


@pytest.fixture
def worker_env(server_env: dict[str, str], worker_redis_url: str) -> dict[str, str]:
    return {**server_env, "MARID_REDIS_URL": worker_redis_url}


async def wait_for(predicate: Callable[[], object], within: float = 20, what: str = "") -> float:
    """Await ``predicate()`` (a coroutine function or not) until truthy; returns the seconds it took."""
    started = time.monotonic()
    while True:
        value = predicate()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return time.monotonic() - started
        assert time.monotonic() - started < within, f"timed out waiting for {what or predicate}"
        await asyncio.sleep(0.02)


async def healthy(redis: Redis, queue: Queue) -> bool:
    """A worker of ``queue`` is polling it: arq writes the health key on its first poll."""
    return bool(await redis.exists(queue.arq_name + ":health-check"))


@contextmanager
def running_worker(env: dict[str, str], *queues: Queue) -> Iterator[subprocess.Popen[bytes]]:
    """The production worker serving ``queues`` in one process, with the test jobs (tests/worker/jobs.py) too."""
    process = subprocess.Popen([sys.executable, "-m", "tests.worker.launch", *queues], env=env)
    try:
        yield process
    finally:
        stop_process(process)


async def started(redis: Redis, process: subprocess.Popen[bytes], *queues: Queue) -> None:
    async def ready() -> bool:
        assert process.poll() is None, f"the worker exited with {process.returncode}"
        return all([await healthy(redis, queue) for queue in queues])

    await wait_for(ready, within=30, what=f"a worker of {', '.join(queues)}")
