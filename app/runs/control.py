"""The run's doorbell and the engine's timings.

The doorbell is a Redis pub/sub channel per run: a control (cancel, inject, restart a step) changes Postgres,
then the engine rings; the worker running one of the run's steps re-reads the run and its step and acts
(abort, deliver injected context). Nothing is *carried* by the bell: a ring that is lost costs only time,
as the worker also re-reads at every heartbeat.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from redis.asyncio import Redis

from app.live.bus import KEY_PREFIX, check_workspace_id

# Workspaces that may have runs in flight, for the lease reaper (cleared when they have none).
ACTIVE_WORKSPACES = "marid:runs:active-workspaces"


def doorbell_channel(workspace_id: str, run_id: str) -> str:
    return f"{KEY_PREFIX}{check_workspace_id(workspace_id)}:run:{run_id}:doorbell"


async def ring(redis: Redis, workspace_id: str, run_id: str) -> None:
    await redis.publish(doorbell_channel(workspace_id, run_id), "1")


@dataclass(frozen=True)
class Tuning:
    """How long a step's lease lasts without a heartbeat, and how often the worker beats."""

    lease_seconds: float = 30.0
    heartbeat_seconds: float = 5.0

    @classmethod
    def from_env(cls) -> Tuning:
        """``MARID_RUN_LEASE_SECONDS`` / ``MARID_RUN_HEARTBEAT_SECONDS`` (the chaos test shortens them)."""
        lease = float(os.environ.get("MARID_RUN_LEASE_SECONDS", cls.lease_seconds))
        beat = float(os.environ.get("MARID_RUN_HEARTBEAT_SECONDS", min(cls.heartbeat_seconds, lease / 3)))
        return cls(lease_seconds=lease, heartbeat_seconds=beat)
