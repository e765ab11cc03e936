"""Enqueueing background jobs from the web process (arq underneath, behind this small facade)."""

from __future__ import annotations

from arq import create_pool
from arq.connections import ArqRedis, RedisSettings


class Jobs:
    def __init__(self, redis_url: str) -> None:
        self._settings = RedisSettings.from_dsn(redis_url)
        self._pool: ArqRedis | None = None

    async def _arq(self) -> ArqRedis:
        if self._pool is None:
            self._pool = await create_pool(self._settings)
        return self._pool

    async def deliver_mail(self) -> None:
        """Ask a worker to send the outbox now (it also sweeps every minute, so a lost nudge only delays)."""
        await (await self._arq()).enqueue_job("deliver_mail")

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.aclose()
            self._pool = None
