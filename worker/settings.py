"""arq ``WorkerSettings``: what ``marid worker`` runs."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession

# Every model, so foreign keys between them resolve (the outbox's refers to workspaces) as in the web process.
import app.models  # noqa: F401
from app.audit.actor import Actor
from app.audit.jobs import SWEEP_SECONDS, relay_audit_outbox
from app.audit.service import record
from app.audit.unit_of_work import public_change
from app.config import get_settings
from app.db import Database
from app.live.bus import EventBus
from app.mail.service import Sent, deliver_pending

Context = dict[str, Any]


async def startup(ctx: Context) -> None:
    settings = get_settings()
    settings.check()
    ctx["settings"] = settings
    ctx["db"] = settings.database()
    ctx["events_redis"] = Redis.from_url(settings.redis_url)
    # Shared by every deliver_mail job of this worker (arq gives each job a copy of this dict, not this dict).
    ctx["mail_lock"] = asyncio.Lock()
    # Handed to every job in its context: a job publishes through ctx["bus"], never through ambient state.
    ctx["bus"] = EventBus(ctx["events_redis"], retention=settings.event_retention())


async def shutdown(ctx: Context) -> None:
    if "events_redis" in ctx:
        await ctx["events_redis"].aclose()
    db: Database | None = ctx.get("db")
    if db is not None:
        await db.dispose()


async def ping(ctx: Context) -> str:
    """A no-op job: proves a worker is consuming the queue."""
    return "pong"


async def _audit_delivery(session: AsyncSession, message: Sent) -> None:
    """Mail sent for a workspace (an invitation) goes in its audit log, in the transaction that marks it sent."""
    if message.workspace_id is not None:
        details = {"email": message.to_address, "subject": message.subject, "kind": message.kind}
        record(session, message.workspace_id, "mail.delivered", Actor.system(), details)


async def deliver_mail(ctx: Context) -> int:
    """Send the e-mail outbox (nudged after each queued mail, and swept every minute).

    Mail sent for a workspace (an invitation) is recorded in its audit log, which also shows it live in
    the workspace's activity feed: admins see that the invitation actually went out.
    """
    db: Database = ctx["db"]
    bus: EventBus = ctx["bus"]
    # Each queued mail nudges a job: one at a time per worker, so mail goes out (and shows up) in order.
    lock: asyncio.Lock = ctx.get("mail_lock") or asyncio.Lock()
    async with lock:
        sent = await deliver_pending(db, ctx["settings"], on_sent=_audit_delivery, unit=partial(public_change, db, bus))
    return len(sent)


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(get_settings().redis_url)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [ping, deliver_mail, relay_audit_outbox]
    cron_jobs: ClassVar[list[Any]] = [
        cron(deliver_mail, second={0}, run_at_startup=True, unique=True),
        # What a crash left between a commit and its relay reaches the logs and live pages within seconds.
        cron(relay_audit_outbox, second=set(SWEEP_SECONDS), run_at_startup=True, unique=True),
    ]
    on_startup = startup
    on_shutdown = shutdown
    # arq polls the queue; 50 ms keeps interactive steps snappy at negligible Redis cost.
    poll_delay = 0.05
    max_jobs = 20
    job_timeout = 3600
    handle_signals = True
    # The compose healthcheck reads arq's health key; refresh it every minute rather than hourly.
    health_check_interval = 60
