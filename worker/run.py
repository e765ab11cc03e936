"""``marid worker``: one arq worker per queue served, all in this process, sharing one set of dependencies.

Each queue keeps its own arq worker (its own queue name, job slots, timeout and health key), so a process
serving both queues still never lets long jobs take the short queue's slots. The dependencies (settings,
database engines, the event bus) are built once, before any job runs, and closed after the last one ends.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections import defaultdict
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from types import ModuleType
from typing import Any

from arq.connections import RedisSettings
from arq.worker import async_check_health
from redis.asyncio import Redis

from app.config import Settings, get_settings
from app.live.bus import EventBus
from app.queues import Enqueuer, Queue
from app.sandbox.workers import heartbeat, new_worker_id
from app.security.secrets import SecretsService
from worker.arq_worker import MaridWorker
from worker.settings import DOMAINS, WORKER_SETTINGS, worker_options


@asynccontextmanager
async def dependencies(settings: Settings) -> AsyncIterator[dict[str, Any]]:
    """What every job's context holds but its queue and arq's own keys (see ``app.queues.JobContext``)."""
    # The one keyring of this worker: jobs get it, and the secrets service, from their context.
    keyring = settings.keyring()
    # Half the web app's kept pool plus as many again in bursts (as before the web app's pools dropped their
    # overflow): dozens of short jobs at once may nest a second public session, which a pool without overflow
    # would make wait on itself.
    db = settings.database(keyring, pool_size=max(1, settings.db_pool_size // 2))
    events_redis = Redis.from_url(settings.redis_url)
    jobs = Enqueuer(settings.redis_url)
    worker_id = new_worker_id()
    try:
        # Beating before the first job: a sandbox this worker starts is never taken for an orphan by the reaper.
        async with heartbeat(events_redis, worker_id):
            yield {
                "settings": settings,
                "db": db,
                "keyring": keyring,
                "secrets": SecretsService(keyring, db),
                "bus": EventBus(events_redis, retention=settings.event_retention()),
                "jobs": jobs,
                "locks": defaultdict(asyncio.Lock),
                "worker_id": worker_id,
            }
    finally:
        await jobs.close()
        await events_redis.aclose()
        await db.dispose()


async def serve(queues: Sequence[Queue], settings: Settings, domains: Sequence[ModuleType] = DOMAINS) -> None:
    """Serve ``queues`` until SIGINT or SIGTERM (or until one of their workers fails, which stops the others)."""
    async with dependencies(settings) as shared:
        workers = [
            MaridWorker(
                **worker_options(WORKER_SETTINGS[queue], domains),
                redis_settings=RedisSettings.from_dsn(settings.redis_url),
                # Its own copy: arq adds its connection for this queue under "redis".
                ctx={**shared, "queue": queue},
                # Signals are handled below, once for every worker (the loop keeps one handler per signal).
                handle_signals=False,
            )
            for queue in queues
        ]

        stopping = False

        def stop(signum: signal.Signals) -> None:
            nonlocal stopping
            for worker in workers:
                if stopping:  # a second Ctrl-C: cancel at once (cancelled jobs are queued again)
                    worker.handle_sig(signum)
                else:  # stop taking jobs, let running ones finish for the queue's drain time, cancel the rest
                    worker.handle_sig_wait_for_completion(signum)
            stopping = True

        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop, signum)
        tasks = [asyncio.create_task(worker.main()) for worker in workers]
        for worker, task in zip(workers, tasks, strict=True):
            worker.main_task = task
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            if not stopping:  # a worker failed (say, Redis refused it): the process stops rather than limp on
                stopping = True
                for worker in workers:
                    worker.handle_sig(signal.SIGTERM)
            await asyncio.wait(tasks)
        finally:
            for signum in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(signum)
            for worker in workers:
                await worker.close()
        for task in tasks:
            if not task.cancelled() and (error := task.exception()) is not None:
                raise error


class QuietSweeps(logging.Filter):
    """Drops arq's start and finish lines of the periodic sweeps (outbox relay, call log, reaper...): a line a
    second each, which buries what the jobs themselves log. Their failures still show (arq logs them apart)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.levelno <= logging.INFO and " cron:" in record.getMessage())


def run(queues: Sequence[Queue], settings: Settings | None = None, domains: Sequence[ModuleType] = DOMAINS) -> int:
    settings = settings or get_settings()
    settings.check()
    logging.basicConfig(level=settings.log_level.upper())
    logging.getLogger("arq.worker").addFilter(QuietSweeps())
    asyncio.run(serve(queues, settings, domains))
    return 0


async def _check(redis_url: str, queues: Sequence[Queue]) -> int:
    codes = [await async_check_health(RedisSettings.from_dsn(redis_url), queue_name=queue.arq_name) for queue in queues]
    return max(codes)


def check(queues: Sequence[Queue], settings: Settings | None = None) -> int:
    """0 when a worker of each queue wrote its health key within the last minute (the compose healthcheck)."""
    return asyncio.run(_check((settings or get_settings()).redis_url, queues))
