"""The LLM gateway's worker job: store the call records a crashed web process left written ahead in Redis.

The gateway writes each call's record to the workspace's pending stream before the answer ends, and into
Postgres right after; a process that dies in between leaves the record pending. The sweep inserts those (the
insert is idempotent) every half minute and at worker start, so every call reaches the log within a minute.
"""

from __future__ import annotations

from app.llm.calllog import sweep
from app.llm.spend import SpendCounters
from app.queues import JobContext, Queue, cron, job


@job(Queue.SHORT)
async def store_pending_llm_calls(ctx: JobContext) -> int:
    """Insert every workspace's pending call records older than half a minute; returns how many were added."""
    return await sweep(ctx["db"], ctx["bus"], SpendCounters(ctx["redis"], ctx["db"]))


sweep_llm_calls = cron(store_pending_llm_calls, second={15, 45}, run_at_startup=True)
