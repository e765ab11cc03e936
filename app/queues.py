"""Background jobs: the queue each one runs on, and the one typed way to enqueue them (arq underneath).

Two queues, so that hour-long agent work never stands in front of mail:

- ``Queue.SHORT``: mail, nudges, housekeeping. Seconds each, many at once per worker.
- ``Queue.LONG``: agent steps, pipeline runs, swarm scheduling. Up to hours each, a few at once per worker.

A domain declares its jobs beside its code, in ``app/<domain>/jobs.py``::

    @job(Queue.SHORT)
    async def deliver_mail(ctx: JobContext) -> int: ...

    sweep_outbox = cron(deliver_mail, second={0})

and ``worker/settings.py`` lists that module, so each queue's worker runs the jobs declared for it. Callers
enqueue the function itself, never a name: ``await jobs.enqueue(deliver_mail)``. The job knows its queue, and
mypy checks the arguments against the function's.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Concatenate, Generic, NotRequired, ParamSpec, TypedDict, TypeVar

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings

if TYPE_CHECKING:
    from redis.asyncio import Redis

    from app.config import Settings
    from app.db import Database
    from app.live.bus import EventBus
    from app.security.crypto import Keyring
    from app.security.secrets import SecretsService

P = ParamSpec("P")
R = TypeVar("R")


class Queue(StrEnum):
    SHORT = "short"
    LONG = "long"

    @property
    def arq_name(self) -> str:
        """The Redis key of this queue (arq's sorted set of waiting jobs)."""
        return f"marid:queue:{self.value}"


class JobContext(TypedDict):
    """What every job receives first: the worker's dependencies, built once when the worker starts.

    arq hands each job a copy of this dict, so anything shared between jobs (a lock) must be made at start-up.
    """

    settings: Settings
    db: Database
    keyring: Keyring
    secrets: SecretsService
    bus: EventBus
    jobs: Enqueuer
    # Process-wide locks by name, for jobs that must not overlap within one worker (mail goes out in order).
    locks: defaultdict[str, asyncio.Lock]
    queue: Queue
    # arq's own connection for this queue (a redis.asyncio.Redis).
    redis: Redis
    # This worker process, as its sandboxes' labels name it; alive while its heartbeat lasts (app/sandbox/workers.py).
    worker_id: str
    # Set by arq for each run of a job; absent when a test calls a job directly.
    job_id: NotRequired[str]
    job_try: NotRequired[int]
    enqueue_time: NotRequired[datetime]


@dataclass(frozen=True)
class Job(Generic[P, R]):
    """A job function bound to its queue. Call it like the function (tests do); enqueue it with an Enqueuer."""

    function: Callable[Concatenate[JobContext, P], Awaitable[R]]
    queue: Queue
    # What arq stores in Redis to find the function again: renaming it strands jobs queued under the old name.
    name: str
    # None: the queue's timeout and arq's tries (5; a job cancelled by a stopping worker is tried again).
    timeout: timedelta | None = None
    max_tries: int | None = None
    # Enqueue options (``with_options``): a job id already queued or running is not queued again.
    job_id: str | None = None
    defer_by: timedelta | None = None

    async def __call__(self, ctx: JobContext, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await self.function(ctx, *args, **kwargs)

    def with_options(self, *, job_id: str | None = None, defer_by: timedelta | None = None) -> Job[P, R]:
        """This job, enqueued under ``job_id`` (one at a time: idempotent steps) or after ``defer_by``."""
        return dataclasses.replace(self, job_id=job_id, defer_by=defer_by)


def job(
    queue: Queue, *, name: str | None = None, timeout: timedelta | None = None, max_tries: int | None = None
) -> Callable[[Callable[Concatenate[JobContext, P], Awaitable[R]]], Job[P, R]]:
    """Declare a job on ``queue``; its name defaults to the function's dotted path (unique across domains)."""

    def declare(function: Callable[Concatenate[JobContext, P], Awaitable[R]]) -> Job[P, R]:
        qualified = name or f"{function.__module__}.{function.__qualname__}"
        return Job(function=function, queue=queue, name=qualified, timeout=timeout, max_tries=max_tries)

    return declare


Schedule = int | set[int] | None


@dataclass(frozen=True)
class Cron:
    """A job that the workers of its queue enqueue on a schedule (once per time across all of them)."""

    job: Job[[], Any]
    weekday: Schedule = None
    hour: Schedule = None
    minute: Schedule = None
    second: Schedule = 0
    run_at_startup: bool = False

    @property
    def name(self) -> str:
        return f"cron:{self.job.name}"

    @property
    def queue(self) -> Queue:
        return self.job.queue


def cron(
    job: Job[[], Any],
    *,
    weekday: Schedule = None,
    hour: Schedule = None,
    minute: Schedule = None,
    second: Schedule = 0,
    run_at_startup: bool = False,
) -> Cron:
    """Run ``job`` at the times that match (like crontab: a field left out matches every value)."""
    return Cron(job, weekday=weekday, hour=hour, minute=minute, second=second, run_at_startup=run_at_startup)


class Enqueuer:
    """Puts jobs on their own queues. The web app keeps one on ``app.state.jobs``; jobs find one in ``ctx["jobs"]``."""

    def __init__(self, redis_url: str) -> None:
        self._settings = RedisSettings.from_dsn(redis_url)
        self._pool: ArqRedis | None = None

    async def _arq(self) -> ArqRedis:
        # Connected on first use: the web app starts (and answers /readyz honestly) while Redis is down.
        if self._pool is None:
            self._pool = await create_pool(self._settings)
        return self._pool

    async def enqueue(self, job: Job[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> str | None:
        """Queue ``job(*args, **kwargs)`` on the job's queue; its id, or None when its ``job_id`` is taken."""
        # Typed against the job's own parameters above; to arq they are just keyword arguments.
        arguments: dict[str, Any] = kwargs
        queued = await (await self._arq()).enqueue_job(
            job.name,
            *args,
            _job_id=job.job_id,
            _queue_name=job.queue.arq_name,
            _defer_by=job.defer_by,
            **arguments,
        )
        return None if queued is None else queued.job_id

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
