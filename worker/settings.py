"""arq ``WorkerSettings``: what ``marid worker`` runs."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

from arq import cron
from arq.connections import RedisSettings
from redis.asyncio import Redis

# Every model, so foreign keys between them resolve (the outbox's refers to workspaces) as in the web process.
import app.models  # noqa: F401
from app.audit.service import record
from app.config import get_settings
from app.db import Database
from app.live import activity
from app.live.bus import EventBus
from app.mail.service import deliver_pending
from app.security.secrets import SecretsService

Context = dict[str, Any]


async def startup(ctx: Context) -> None:
    settings = get_settings()
    settings.check()
    ctx["settings"] = settings
    # The one keyring of this worker; jobs get it, and the secrets service, from their context.
    ctx["keyring"] = settings.keyring()
    ctx["db"] = settings.database(ctx["keyring"])
    ctx["secrets"] = SecretsService(ctx["keyring"], ctx["db"])
    ctx["events_redis"] = Redis.from_url(settings.redis_url)
    # Shared by every deliver_mail job of this worker (arq gives each job a copy of this dict, not this dict).
    ctx["mail_lock"] = asyncio.Lock()
    activity.use_bus(EventBus(ctx["events_redis"], retention=settings.event_retention()))


async def shutdown(ctx: Context) -> None:
    activity.use_bus(None)
    if "events_redis" in ctx:
        await ctx["events_redis"].aclose()
    db: Database | None = ctx.get("db")
    if db is not None:
        await db.dispose()


async def ping(ctx: Context) -> str:
    """A no-op job: proves a worker is consuming the queue."""
    return "pong"


async def deliver_mail(ctx: Context) -> int:
    """Send the e-mail outbox (nudged after each queued mail, and swept every minute).

    Mail sent for a workspace (an invitation) is recorded in its audit log, which also shows it live in
    the workspace's activity feed: admins see that the invitation actually went out.
    """
    db: Database = ctx["db"]
    # Each queued mail nudges a job: one at a time per worker, so mail goes out (and shows up) in order.
    lock: asyncio.Lock = ctx.get("mail_lock") or asyncio.Lock()
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


def redis_settings() -> RedisSettings:
    return RedisSettings.from_dsn(get_settings().redis_url)


class WorkerSettings:
    functions: ClassVar[list[Any]] = [ping, deliver_mail]
    cron_jobs: ClassVar[list[Any]] = [cron(deliver_mail, second={0}, run_at_startup=True, unique=True)]
    on_startup = startup
    on_shutdown = shutdown
    # arq polls the queue; 50 ms keeps interactive steps snappy at negligible Redis cost.
    poll_delay = 0.05
    max_jobs = 20
    job_timeout = 3600
    handle_signals = True
    # The compose healthcheck reads arq's health key; refresh it every minute rather than hourly.
    health_check_interval = 60
