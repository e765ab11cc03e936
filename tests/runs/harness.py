"""Real arq workers for the engine's tests: in this process (the end-to-end and control tests) or as
``marid worker`` processes (the chaos test), on a Redis database of their own for the queues."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from arq.connections import RedisSettings

from app.audit.actor import Actor
from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.live.bus import Event, EventBus, Topic
from app.queues import Enqueuer, JobContext, Queue
from app.runs import jobs as runs_jobs
from app.runs.control import Tuning
from app.runs.dispatch import kick
from app.runs.engine import Engine
from app.runs.jobs import step_enqueuer, use_engine_factory
from app.runs.service import get_run, start_run
from app.runs.views import RunView
from worker.arq_worker import MaridWorker
from worker.settings import WORKER_SETTINGS, worker_options

ENGINE_REDIS_DB = 8

LINEAR = """
id: linear
name: Linear
version: '1'
agents: [{id: finn, name: Finn}]
steps:
  - {id: ONE, agent: finn, input: "Start: {{task_description}}", outputs: [first], onComplete: TWO}
  - {id: TWO, agent: finn, input: "Go on from {{first}}", outputs: [second], onComplete: THREE}
  - {id: THREE, agent: finn, input: "Finish {{second}}", outputs: [third]}
"""
PERSON = Actor.system("Engine test")


def queue_url(settings: Settings) -> str:
    return settings.redis_url.rsplit("/", 1)[0] + f"/{ENGINE_REDIS_DB}"


@asynccontextmanager
async def engine_workers(
    settings: Settings,
    deps: ExecutionDeps,
    *,
    tuning: Tuning | None = None,
    worker_id: str = "engine-test",
) -> AsyncIterator[Enqueuer]:
    """A short-queue and a long-queue arq worker in this process, running the engine's jobs on ``deps``."""
    url = queue_url(settings)
    jobs = Enqueuer(url)
    engine = Engine(deps, step_enqueuer(jobs), worker_id=worker_id, tuning=tuning or Tuning(5, 1))

    async def factory(ctx: JobContext) -> Engine:
        return engine

    use_engine_factory(factory)
    ctx: dict[str, Any] = {
        "settings": settings,
        "db": deps.db,
        "bus": deps.bus,
        "jobs": jobs,
        "locks": defaultdict(asyncio.Lock),
        "worker_id": worker_id,
    }
    workers = [
        MaridWorker(
            **worker_options(WORKER_SETTINGS[queue], (runs_jobs,)),
            redis_settings=RedisSettings.from_dsn(url),
            ctx={**ctx, "queue": queue},
            handle_signals=False,
        )
        for queue in (Queue.SHORT, Queue.LONG)
    ]
    tasks = [asyncio.create_task(worker.main()) for worker in workers]
    for worker, task in zip(workers, tasks, strict=True):
        worker.main_task = task  # so that close() stops its loop and lets running jobs end
    try:
        yield jobs
    finally:
        for worker in workers:
            with warnings.catch_warnings():  # arq closes its pool with redis' deprecated close()
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        use_engine_factory(None)
        await jobs.close()


async def started_run(
    db: Database, bus: EventBus, jobs: Enqueuer, workspace_id: str, pipeline_id: str, task: str
) -> str:
    async with workspace_change(db, bus, workspace_id) as session:
        run = await start_run(session, pipeline_id=pipeline_id, task=task, actor=PERSON)
    await kick(jobs, workspace_id, run.id)
    return run.id


async def until_run(
    db: Database, workspace_id: str, run_id: str, done: Callable[[RunView], bool], seconds: float = 120
) -> RunView:
    deadline = time.monotonic() + seconds
    while True:
        async with db.tenant_session(workspace_id) as session:
            view = await get_run(session, run_id)
        if done(view):
            return view
        steps = [(s.step_id, s.status) for s in view.steps]
        assert time.monotonic() < deadline, f"run {run_id} is {view.status}: {steps}"
        await asyncio.sleep(0.1)


def finished(view: RunView) -> bool:
    return view.finished


async def events_of(bus: EventBus, workspace_id: str, run_id: str) -> list[Event]:
    return [event for _, _, event in await bus.read_since(workspace_id, [Topic.run(run_id)])]


async def wait_until(check: Callable[[], Awaitable[bool]], seconds: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + seconds
    while not await check():
        assert time.monotonic() < deadline, f"timed out: {what}"
        await asyncio.sleep(0.1)
