"""Swarm fixtures: real arq workers (in this process, on the test Redis), the real executor over the scripted
provider, the gateway and the process runner (tests/execution's fixtures), and helpers to start and watch."""

from __future__ import annotations

import asyncio
import time
import warnings
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import pytest
from arq.connections import RedisSettings
from redis.asyncio import Redis

from app.audit.actor import Actor
from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.live.bus import Event, Topic
from app.queues import Enqueuer, Queue
from app.security.crypto import Keyring
from app.security.secrets import SecretsService
from app.swarms import executor as executors
from app.swarms import service
from app.swarms.agent_executor import AgentStepExecutor
from app.swarms.jobs import ACTIVE_KEY
from app.swarms.models import Swarm, SwarmTask
from tests.execution.conftest import (
    MODEL,
    add_agents,
    channels,
    deps,
    files_root,
    gateway,
    gateway_settings,
    llm,
    redis,
    tenant,
)
from worker.arq_worker import MaridWorker
from worker.settings import DOMAINS, WORKER_SETTINGS, worker_options

__all__ = [
    "MODEL",
    "add_agents",
    "channels",
    "deps",
    "files_root",
    "gateway",
    "gateway_settings",
    "llm",
    "redis",
    "tenant",
]

ACTOR = Actor.system("the swarm tests")


class Workers:
    """Both queues' arq workers in this process, sharing one context as ``marid worker`` builds it."""

    def __init__(self, settings: Settings, db: Database, keyring: Keyring, deps: ExecutionDeps, long_slots: int):
        self.jobs = Enqueuer(settings.redis_url)
        shared: dict[str, Any] = {
            "settings": settings,
            "db": db,
            "keyring": keyring,
            "secrets": SecretsService(keyring, db),
            "bus": deps.bus,
            "jobs": self.jobs,
            "locks": defaultdict(asyncio.Lock),
            "worker_id": "swarm-tests",
        }
        self.workers: list[MaridWorker] = []
        for queue in (Queue.SHORT, Queue.LONG):
            limits = WORKER_SETTINGS[queue]
            if queue is Queue.LONG:
                limits = replace(limits, max_jobs=long_slots)
            self.workers.append(
                MaridWorker(
                    **worker_options(limits, DOMAINS),
                    redis_settings=RedisSettings.from_dsn(settings.redis_url),
                    ctx={**shared, "queue": queue},
                    handle_signals=False,
                )
            )
        self.tasks = [asyncio.create_task(w.main()) for w in self.workers]

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        for worker in self.workers:
            # arq closes its pool with redis' deprecated close(); nothing to fix on this side.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
        await self.jobs.close()


async def clean_queues(redis: Redis) -> None:
    keys = [k async for k in redis.scan_iter("marid:queue:*")] + [k async for k in redis.scan_iter("arq:*")]
    keys.append(ACTIVE_KEY.encode())
    await redis.delete(*keys)


@pytest.fixture
async def workers(
    settings: Settings, db: Database, keyring: Keyring, deps: ExecutionDeps
) -> AsyncIterator[Callable[..., Awaitable[Workers]]]:
    """Start in-process workers (``await workers(long_slots=8)``); the real executor over ``deps`` is installed."""
    started: list[Workers] = []
    await clean_queues(deps.redis)
    executors.install(AgentStepExecutor(deps=deps))

    async def start(long_slots: int = 8) -> Workers:
        running = Workers(settings, db, keyring, deps, long_slots)
        started.append(running)
        return running

    yield start
    for running in started:
        await running.close()
    executors.install(None)
    await clean_queues(deps.redis)


async def start(db: Database, deps: ExecutionDeps, jobs: Enqueuer, workspace_id: str, request: dict[str, Any]) -> str:
    async with workspace_change(db, deps.bus, workspace_id) as session:
        swarm = await service.start_swarm(session, deps.bus, workspace_id, ACTOR, request, origin="api")
    await service.kick_off(jobs, deps.bus, workspace_id, swarm)
    return swarm.id


async def finished(db: Database, workspace_id: str, swarm_id: str, within: float = 90) -> tuple[Swarm, list[SwarmTask]]:
    """Wait for the swarm to end; the swarm and its tasks."""
    deadline = time.monotonic() + within
    while True:
        async with db.tenant_session(workspace_id) as session:
            swarm = await service.get_swarm(session, swarm_id)
            tasks = await service.tasks_of(session, swarm_id)
        if swarm.status != "running":
            return swarm, tasks
        assert time.monotonic() < deadline, f"swarm still running: {[(t.key, t.status) for t in tasks]}"
        await asyncio.sleep(0.1)


async def events_of(deps: ExecutionDeps, workspace_id: str, swarm_id: str) -> list[Event]:
    return [event for _, _, event in await deps.bus.read_since(workspace_id, [Topic.swarm(swarm_id)])]


def task(key: str, *deps: str, **extra: Any) -> dict[str, Any]:
    return {
        "key": key,
        "title": f"Task {key}",
        "execution_prompt": f"Write the note for {key}.",
        "dependencies": list(deps),
        **extra,
    }


def max_overlap(tasks: list[SwarmTask]) -> int:
    """The most tasks running at one instant, from their recorded start and end times."""
    edges: list[tuple[float, int]] = []
    for t in tasks:
        if t.started_at is None or t.finished_at is None:
            continue
        edges.append((t.started_at.timestamp(), 1))
        edges.append((t.finished_at.timestamp(), -1))
    # At equal times an end comes before a start: a slot freed and reused at once is not an overlap.
    edges.sort(key=lambda edge: (edge[0], edge[1]))
    running = peak = 0
    for _, change in edges:
        running += change
        peak = max(peak, running)
    return peak
