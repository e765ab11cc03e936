"""The sandbox domain's jobs: the reaper, every minute and whenever a short-queue worker starts."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

from app.queues import JobContext, Queue, cron, job
from app.sandbox import stepdirs
from app.sandbox.configured import docker_runner, local_runner
from app.sandbox.reaper import reap

log = logging.getLogger(__name__)


@job(Queue.SHORT)
async def reap_sandboxes(ctx: JobContext) -> int:
    """Destroy sandboxes whose worker died (or that outlived their deadline); apply the files' retention."""
    settings = ctx["settings"]
    # Local records cost a directory listing: always looked at, so switching runners leaves nothing behind.
    count = len(await reap(local_runner(settings, worker_id=ctx["worker_id"]), ctx["redis"]))
    if settings.sandbox_runner == "docker":
        docker = await asyncio.to_thread(docker_runner, settings, worker_id=ctx["worker_id"])
        try:
            count += len(await reap(docker, ctx["redis"]))
        finally:
            docker.close()
    days = settings.sandbox_files_retention_days
    if days > 0:
        policy = stepdirs.older_than(days)
        removed = await asyncio.to_thread(stepdirs.prune, Path(settings.sandbox_files_dir), policy)
        if removed:
            log.info("removed %d step directories unchanged for %s days", len(removed), days)
    return count


reap_sandboxes_regularly = cron(reap_sandboxes, second={0}, run_at_startup=True)
