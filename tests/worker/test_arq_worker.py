"""worker.arq_worker.MaridWorker: arq's worker starting a poll's jobs side by side, and closing cleanly."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import Any

from arq.connections import RedisSettings
from redis.asyncio import Redis

from app.queues import Enqueuer, Queue
from tests.worker import jobs as test_jobs
from tests.worker.jobs import long_note
from worker.arq_worker import MaridWorker
from worker.settings import LONG, worker_options


@asynccontextmanager
async def long_workers(
    url: str, count: int, slots: int, on_job_end: Callable[[dict[str, Any]], Awaitable[None]] | None = None
) -> AsyncIterator[list[MaridWorker]]:
    made = [
        MaridWorker(
            **worker_options(replace(LONG, max_jobs=slots), (test_jobs,)),
            on_job_end=on_job_end,
            redis_settings=RedisSettings.from_dsn(url),
            ctx={"queue": Queue.LONG},
            handle_signals=False,
        )
        for _ in range(count)
    ]
    tasks = [asyncio.create_task(worker.main()) for worker in made]
    for worker, task in zip(made, tasks, strict=True):
        worker.main_task = task
    try:
        yield made
    finally:
        with warnings.catch_warnings():  # arq closes its pool with redis' deprecated close()
            warnings.simplefilter("ignore", DeprecationWarning)
            for worker in made:
                await worker.close()
        await asyncio.gather(*tasks, return_exceptions=True)


async def _all_finished(redis: Redis, keys: list[str], seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while True:
        notes = [await redis.lrange(key, 0, -1) for key in keys]
        if all("finished on long" in note for note in notes):
            return
        assert time.monotonic() < deadline, f"not finished: {notes}"
        await asyncio.sleep(0.05)


async def test_a_burst_of_jobs_runs_each_exactly_once_across_workers(redis: Redis, worker_redis_url: str) -> None:
    jobs = Enqueuer(worker_redis_url)
    keys = [f"burst-{n}" for n in range(24)]
    try:
        async with long_workers(worker_redis_url, count=3, slots=4):
            for key in keys:
                await jobs.enqueue(long_note, key, 0.3)
            await _all_finished(redis, keys)
            # Workers with free slots kept polling while the others' jobs ran: none started a running job again.
            await asyncio.sleep(0.3)
    finally:
        await jobs.close()
    for key in keys:
        assert await redis.lrange(key, 0, -1) == ["started on long", "finished on long"], key
    assert await redis.zcard(Queue.LONG.arq_name) == 0


async def test_jobs_started_together_overlap_up_to_the_slots(redis: Redis, worker_redis_url: str) -> None:
    jobs = Enqueuer(worker_redis_url)
    keys = [f"slots-{n}" for n in range(6)]
    try:
        for key in keys:  # queued before the worker starts: its first poll sees all six
            await jobs.enqueue(long_note, key, 1.0)
        async with long_workers(worker_redis_url, count=1, slots=4):
            deadline = time.monotonic() + 20
            while sum([len(await redis.lrange(key, 0, -1)) > 0 for key in keys]) < 4:
                assert time.monotonic() < deadline, "four jobs never ran at once"
                await asyncio.sleep(0.02)
            started = [key for key in keys if await redis.lrange(key, 0, -1)]
            assert len(started) == 4  # the slots, not more: the other two wait for a slot
            await _all_finished(redis, keys)
    finally:
        await jobs.close()


async def test_close_ends_jobs_caught_between_their_end_and_their_result_without_raising(
    redis: Redis, worker_redis_url: str
) -> None:
    """A job whose function has returned but whose result is still being written is cancelled by close() too; arq's
    own close then raised CancelledError and left its Redis pool open (seen as a flaky teardown)."""
    in_hook = asyncio.Event()

    async def slow_job_end(ctx: dict[str, Any]) -> None:
        in_hook.set()
        await asyncio.sleep(30)  # close() cancels the job here, after its function returned

    jobs = Enqueuer(worker_redis_url)
    try:
        await jobs.enqueue(long_note, "closing", 0)
        async with long_workers(worker_redis_url, count=1, slots=2, on_job_end=slow_job_end) as made:
            await asyncio.wait_for(in_hook.wait(), 20)
        assert made[0]._pool is None
        assert await redis.lrange("closing", 0, -1) == ["started on long", "finished on long"]
    finally:
        await jobs.close()
