"""Real worker processes: each serves only its queue, long jobs never hold up mail, stopping loses no job."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import pytest
from redis.asyncio import Redis

from app.db import Database
from app.mail.jobs import deliver_mail
from app.mail.service import queue_mail
from app.queues import Enqueuer, Queue
from tests.conftest import Services
from tests.mail.conftest import Inbox
from tests.worker.conftest import running_worker, started, wait_for
from tests.worker.jobs import long_note, short_note
from worker.settings import LONG


async def _notes(redis: Redis, key: str) -> list[str]:
    return list(await redis.lrange(key, 0, -1))


async def test_a_worker_runs_only_the_jobs_of_its_queue(
    redis: Redis, jobs: Enqueuer, worker_env: dict[str, str]
) -> None:
    with running_worker(worker_env, Queue.LONG) as process:
        await started(redis, process, Queue.LONG)
        await jobs.enqueue(short_note, "short-a")
        await jobs.enqueue(long_note, "long-b")
        await wait_for(lambda: _notes(redis, "long-b"), what="the long job")
        # Give the long worker every chance to take the short job too: many of its polls.
        await asyncio.sleep(1)
        assert await _notes(redis, "long-b") == ["started on long", "finished on long"]
        assert await _notes(redis, "short-a") == []
        assert await redis.zcard(Queue.SHORT.arq_name) == 1

    await jobs.enqueue(long_note, "long-c")
    with running_worker(worker_env, Queue.SHORT) as process:
        await started(redis, process, Queue.SHORT)
        await wait_for(lambda: _notes(redis, "short-a"), what="the short job")
        await asyncio.sleep(1)
        assert await _notes(redis, "short-a") == ["started on short", "finished on short"]
        assert await _notes(redis, "long-c") == []
        assert await redis.zcard(Queue.LONG.arq_name) == 1


@pytest.fixture(scope="module")
def queues_database_url(services: Services) -> str:
    """A database of this module's own: it counts only the mail it queued."""
    return asyncio.run(services.new_database("marid_queues"))


@pytest.fixture
def mail_env(worker_env: dict[str, str], queues_database_url: str, smtp_server: Inbox) -> dict[str, str]:
    return {
        **worker_env,
        "MARID_DATABASE_URL": queues_database_url,
        "MARID_SMTP_HOST": "127.0.0.1",
        "MARID_SMTP_PORT": str(smtp_server.port),
        "MARID_SMTP_STARTTLS": "false",
    }


@pytest.fixture(params=["a process per queue", "one process for both"])
def both_queues(request: pytest.FixtureRequest, mail_env: dict[str, str]) -> Iterator[list[subprocess.Popen[bytes]]]:
    """The two ways to run both queues: compose's and `marid dev`'s, and the default of `marid worker`."""
    if request.param == "one process for both":
        with running_worker(mail_env, Queue.SHORT, Queue.LONG) as both:
            yield [both]
    else:
        with running_worker(mail_env, Queue.SHORT) as short, running_worker(mail_env, Queue.LONG) as long:
            yield [short, long]


async def test_long_jobs_do_not_delay_mail(
    redis: Redis,
    jobs: Enqueuer,
    both_queues: list[subprocess.Popen[bytes]],
    queues_database_url: str,
    smtp_server: Inbox,
) -> None:
    await started(redis, both_queues[0], Queue.SHORT)
    await started(redis, both_queues[-1], Queue.LONG)

    # More long work than the long workers have slots: under one shared queue, this is what starved mail.
    keys = [f"slow-{index}" for index in range(LONG.max_jobs + 1)]
    for key in keys:
        await jobs.enqueue(long_note, key, seconds=60)

    async def long_slots_full() -> bool:
        return sum([bool(await _notes(redis, key)) for key in keys]) == LONG.max_jobs

    await wait_for(long_slots_full, what="every long slot busy")

    address = f"prompt-{time.monotonic_ns()}@example.com"
    db = Database(queues_database_url, pool_size=1)
    try:
        async with db.public_session() as session:
            await queue_mail(session, kind="verify-email", to=address, subject="Prompt", body="Hello")
    finally:
        await db.dispose()
    await jobs.enqueue(deliver_mail)
    took = await wait_for(lambda: address in smtp_server.recipients(), within=10, what="the mail")

    assert took < 3, f"mail took {took:.1f} s behind the long jobs"
    # And the long work was all still going (the last job still waiting for a slot).
    notes = [await _notes(redis, key) for key in keys]
    assert sorted(map(len, notes)) == [0, *[1] * LONG.max_jobs], notes
    assert await redis.zcard(Queue.LONG.arq_name) == len(keys)


async def test_stopping_lets_short_jobs_finish_and_hands_long_jobs_back(
    redis: Redis, jobs: Enqueuer, worker_env: dict[str, str]
) -> None:
    with running_worker(worker_env, Queue.SHORT, Queue.LONG) as process:
        await started(redis, process, Queue.SHORT, Queue.LONG)
        await jobs.enqueue(short_note, "short", seconds=2)
        await jobs.enqueue(long_note, "long", seconds=600)
        await wait_for(lambda: _notes(redis, "short"), what="the short job")
        await wait_for(lambda: _notes(redis, "long"), what="the long job")

        stopping = time.monotonic()
        process.send_signal(signal.SIGTERM)
        assert await asyncio.to_thread(process.wait, 15) == 0
        assert time.monotonic() - stopping < 8
    # The mail-like job finished; the long one went back to its queue, for the next long worker.
    assert await _notes(redis, "short") == ["started on short", "finished on short"]
    assert await _notes(redis, "long") == ["started on long"]
    assert await redis.zcard(Queue.LONG.arq_name) == 1

    with running_worker(worker_env, Queue.LONG) as process:
        await started(redis, process, Queue.LONG)

        async def started_again() -> bool:
            return (await _notes(redis, "long")).count("started on long") == 2

        await wait_for(started_again, what="the long job, again")


def _marid_worker(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "worker", *args], env=env, capture_output=True, text=True, timeout=60
    )


async def test_the_healthcheck_asks_for_a_worker_of_that_queue(redis: Redis, worker_env: dict[str, str]) -> None:
    assert (await asyncio.to_thread(_marid_worker, worker_env, "--queue", "long", "--check")).returncode == 1
    with running_worker(worker_env, Queue.LONG) as process:
        await started(redis, process, Queue.LONG)
        assert (await asyncio.to_thread(_marid_worker, worker_env, "--queue", "long", "--check")).returncode == 0
        assert (await asyncio.to_thread(_marid_worker, worker_env, "--queue", "short", "--check")).returncode == 1
        assert (await asyncio.to_thread(_marid_worker, worker_env, "--check")).returncode == 1
