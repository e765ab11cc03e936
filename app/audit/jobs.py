"""The audit log's worker jobs: relay what the fast path left in the outbox (a crash, a Redis outage).

The worker runs it at start-up and every few seconds (short queue); it takes the database and the bus from
the job context, as every job does.
"""

from __future__ import annotations

from app.audit.relay import sweep
from app.queues import JobContext, Queue, cron, job

# Seconds of the minute at which the sweep runs.
SWEEP_SECONDS = set(range(0, 60, 5))


@job(Queue.SHORT)
async def relay_audit_outbox(ctx: JobContext) -> int:
    """Relay every workspace's pending audit entries; returns how many were published."""
    return await sweep(ctx["db"], ctx["bus"])


# What a crash left between a commit and its relay reaches the logs and live pages within seconds.
sweep_audit_outbox = cron(relay_audit_outbox, second=SWEEP_SECONDS, run_at_startup=True)
