"""Check a pooled connection before use only when it sat idle for a while.

SQLAlchemy's ``pool_pre_ping`` sends a round trip before *every* checkout: measured at 12% of a dashboard
request. A connection used a moment ago is alive; one idle for ``IDLE_SECONDS`` may have been closed by the
server, a proxy or a restart, so it is pinged first, and replaced if the ping fails (the pool retries with a
fresh connection: SQLAlchemy's documented "pessimistic, custom" disconnect handling).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine

IDLE_SECONDS = 5.0
_CHECKED_IN = "marid.checked_in_at"


def ping_when_idle(engine: AsyncEngine, idle_seconds: float = IDLE_SECONDS) -> None:
    pool = engine.sync_engine.pool

    @event.listens_for(pool, "checkin")
    def _remember(_dbapi_connection: Any, record: Any) -> None:
        if record is not None:
            record.info[_CHECKED_IN] = time.monotonic()

    @event.listens_for(pool, "checkout")
    def _ping_if_idle(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        since = record.info.get(_CHECKED_IN)
        if since is None or time.monotonic() - since < idle_seconds:
            return
        try:
            dbapi_connection.ping()
        except Exception as error:  # any failure: this connection is gone, the pool makes another
            raise DisconnectionError(f"idle connection failed its ping: {error}") from error
