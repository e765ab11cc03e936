"""The worker's own jobs: one no-op per queue, which proves a worker is consuming that queue."""

from __future__ import annotations

from app.queues import JobContext, Queue, job


@job(Queue.SHORT)
async def ping_short(ctx: JobContext) -> str:
    return f"pong from the {ctx['queue']} queue"


@job(Queue.LONG)
async def ping_long(ctx: JobContext) -> str:
    return f"pong from the {ctx['queue']} queue"
