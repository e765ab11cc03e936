"""Which workers are alive: a heartbeat key per worker process in Redis, which the reaper reads.

A sandbox belongs to the worker process that started it (its labels and records name the worker id). The
worker refreshes ``marid:sandbox:worker:<id>`` every ``BEAT`` seconds with a ``TTL`` several beats long; once a
worker is gone (killed, its host lost) the key expires and the reaper takes its sandboxes. The heartbeat starts
before the worker takes its first job, so a live worker's sandbox never looks orphaned.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import socket
from collections.abc import AsyncIterator, Iterable

from redis.asyncio import Redis
from redis.exceptions import RedisError

BEAT = 10.0
TTL = 45


def new_worker_id() -> str:
    """Unique per worker process: host, pid and a random part (pids repeat across containers and restarts)."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())[:40]
    return f"{host}-{os.getpid()}-{secrets.token_hex(4)}"


def _key(worker_id: str) -> str:
    return f"marid:sandbox:worker:{worker_id}"


async def beat(redis: Redis, worker_id: str) -> None:
    await redis.set(_key(worker_id), "1", ex=TTL)


async def alive(redis: Redis, worker_ids: Iterable[str]) -> set[str]:
    """Those of ``worker_ids`` whose heartbeat has not expired."""
    ids = sorted(set(worker_ids))
    if not ids:
        return set()
    values = await redis.mget([_key(worker_id) for worker_id in ids])
    return {worker_id for worker_id, value in zip(ids, values, strict=True) if value is not None}


@contextlib.asynccontextmanager
async def heartbeat(redis: Redis, worker_id: str, *, every: float = BEAT) -> AsyncIterator[None]:
    """Keep ``worker_id`` alive while the block runs (the first beat is sent before the block starts)."""
    await beat(redis, worker_id)

    async def loop() -> None:
        while True:
            await asyncio.sleep(every)
            with contextlib.suppress(OSError, RedisError):  # Redis away for a moment: the TTL bridges it
                await beat(redis, worker_id)

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(OSError, RedisError):
            await redis.delete(_key(worker_id))
