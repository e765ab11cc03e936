"""The audit log's worker jobs: relay what the fast path left in the outbox (a crash, a Redis outage).

The worker runs it at start-up and every few seconds; it takes the database and the bus from the job context
(``ctx["db"]``, ``ctx["bus"]``), as every job does.
"""

from __future__ import annotations

from typing import Any

from app.audit.relay import sweep
from app.db import Database
from app.live.bus import EventBus

# Seconds of the minute at which the sweep runs (arq crons take sets of seconds).
SWEEP_SECONDS = frozenset(range(0, 60, 5))


async def relay_audit_outbox(ctx: dict[str, Any]) -> int:
    """Relay every workspace's pending audit entries; returns how many were published."""
    db: Database = ctx["db"]
    bus: EventBus = ctx["bus"]
    return await sweep(db, bus)
