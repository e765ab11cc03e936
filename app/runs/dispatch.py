"""How a request hands a run to the engine: ``await kick(jobs, workspace_id, run_id)`` AFTER the commit.

The services (start, cancel, pause, resume, restart, inject) only change Postgres; the kick enqueues
``advance_run``, which acts on the change (starts the run, rings the doorbell of a running step, announces the
new status). Kicking twice is harmless: advancing is idempotent.
"""

from __future__ import annotations

from app.queues import Enqueuer
from app.runs.jobs import advance_run


async def kick(enqueuer: Enqueuer, workspace_id: str, run_id: str) -> None:
    await enqueuer.enqueue(advance_run, workspace_id, run_id)
