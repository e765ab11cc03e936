"""The mail domain's jobs: deliver the outbox when nudged, and sweep it every minute (short queue)."""

from __future__ import annotations

import asyncio

from app.audit.service import record
from app.db import Database
from app.mail.service import deliver_pending
from app.queues import JobContext, Queue, cron, job


@job(Queue.SHORT)
async def deliver_mail(ctx: JobContext) -> int:
    """Send the e-mail outbox (nudged after each queued mail, and swept every minute).

    Mail sent for a workspace (an invitation) is recorded in its audit log, which also shows it live in
    the workspace's activity feed: admins see that the invitation actually went out.
    """
    db: Database = ctx["db"]
    # Each queued mail nudges a job: one at a time per worker, so mail goes out (and shows up) in order.
    locks = ctx.get("locks")
    lock = locks["mail"] if locks is not None else asyncio.Lock()
    async with lock:
        sent = await deliver_pending(db, ctx["settings"])
        for message in sent:
            if message.workspace_id is not None:
                await record(
                    db,
                    message.workspace_id,
                    "mail.delivered",
                    actor_id=None,
                    details={"email": message.to_address, "subject": message.subject, "kind": message.kind},
                )
    return len(sent)


# A lost nudge only delays mail until the next minute, and retries wait for this sweep. At start-up too: a
# restarted worker sends what queued while it was down. A batch cut short by the queue's timeout loses nothing,
# since each message is its own unit of work and the next sweep goes on.
sweep_outbox = cron(deliver_mail, second={0}, run_at_startup=True)
