"""The reaper: destroys sandboxes whose worker died, and any that outlived their deadline.

A runner lists what it started on this host or engine (``list_owned``: the local runner's records, the Docker
runner's labelled containers), each naming its worker. A worker is alive while its heartbeat key is in Redis
(app/sandbox/workers.py). A sandbox whose worker is not alive, or which is past its deadline (its timeout and a
grace period, whoever owns it), is destroyed: processes or container, cgroups, uid; its files stay.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from redis.asyncio import Redis

from app.sandbox import workers
from app.sandbox.runner import Runner

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Reaped:
    runner: str
    sandbox_id: str
    workspace_id: str
    worker_id: str
    reason: str


async def reap(runner: Runner, redis: Redis, *, now: float | None = None) -> list[Reaped]:
    """Destroy ``runner``'s orphaned and overdue sandboxes; what was destroyed, and why."""
    now = time.time() if now is None else now
    records = await runner.list_owned()
    live = await workers.alive(redis, (record.worker_id for record in records))
    reaped = []
    for record in records:
        if record.worker_id not in live:
            reason = f"its worker {record.worker_id} is gone"
        elif record.deadline is not None and now > record.deadline:
            reason = "it outlived its deadline"
        else:
            continue
        await runner.destroy(record.sandbox_id)
        log.warning("reaped sandbox %s (workspace %s): %s", record.sandbox_id, record.workspace_id, reason)
        reaped.append(Reaped(runner.name, record.sandbox_id, record.workspace_id, record.worker_id, reason))
    return reaped
