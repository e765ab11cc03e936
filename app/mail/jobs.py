"""The mail domain's jobs: deliver the outbox when nudged, and sweep it every minute (short queue)."""

from __future__ import annotations

import asyncio
from functools import partial

from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record
from app.audit.unit_of_work import public_change
from app.db import Database
from app.mail.service import Sent, deliver_pending
from app.queues import JobContext, Queue, cron, job


async def _audit_delivery(session: AsyncSession, message: Sent) -> None:
    """Mail sent for a workspace (an invitation) goes in its audit log, in the transaction that marks it sent."""
    if message.workspace_id is not None:
        details = {"email": message.to_address, "subject": message.subject, "kind": message.kind}
        record(session, message.workspace_id, "mail.delivered", Actor.system(), details)


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
        unit = partial(public_change, db, ctx["bus"])
        sent = await deliver_pending(db, ctx["settings"], on_sent=_audit_delivery, unit=unit)
    return len(sent)


# A lost nudge only delays mail until the next minute, and retries wait for this sweep. At start-up too: a
# restarted worker sends what queued while it was down. A batch cut short by the queue's timeout loses nothing,
# since each message is its own unit of work and the next sweep goes on.
sweep_outbox = cron(deliver_mail, second={0}, run_at_startup=True)
