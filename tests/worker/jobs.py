"""Jobs that exist only for the tests: each notes in a Redis list which queue's worker ran it, and when."""

from __future__ import annotations

import asyncio

from app.queues import JobContext, Queue, job


async def _note(ctx: JobContext, key: str, seconds: float) -> None:
    await ctx["redis"].rpush(key, f"started on {ctx['queue']}")
    await asyncio.sleep(seconds)
    await ctx["redis"].rpush(key, f"finished on {ctx['queue']}")


@job(Queue.SHORT)
async def short_note(ctx: JobContext, key: str, seconds: float = 0) -> None:
    await _note(ctx, key, seconds)


@job(Queue.LONG)
async def long_note(ctx: JobContext, key: str, seconds: float = 0) -> None:
    await _note(ctx, key, seconds)
