"""The reaper's list of active swarms: a swarm listed before its start commits is not dropped for being unseen."""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.queues import Enqueuer
from app.swarms.jobs import ACTIVE_KEY, MISSING_GRACE, active_swarms, mark_active, reap_swarms
from tests.llm.gateway import Tenant
from tests.swarms.conftest import clean_queues


def _ctx(settings: Settings, db: Database, deps: ExecutionDeps, jobs: Enqueuer) -> dict[str, Any]:
    return {"settings": settings, "db": db, "bus": deps.bus, "jobs": jobs, "locks": defaultdict(), "worker_id": "t"}


async def test_a_swarm_whose_start_has_not_committed_stays_listed_until_its_grace_ends(
    settings: Settings, db: Database, deps: ExecutionDeps, tenant: Tenant
) -> None:
    await clean_queues(deps.redis)
    jobs = Enqueuer(settings.redis_url)
    try:
        # Listed by start_swarm before its transaction commits (here: it never will).
        await mark_active(deps.redis, tenant.id, "swarm_0123456789ab", True)
        await reap_swarms.function(_ctx(settings, db, deps, jobs))  # type: ignore[arg-type]
        assert [(w, s) for w, s, _ in await active_swarms(deps.redis)] == [(tenant.id, "swarm_0123456789ab")]

        long_ago = time.time() - MISSING_GRACE.total_seconds() - 1
        await deps.redis.hset(ACTIVE_KEY, f"{tenant.id}:swarm_0123456789ab", str(int(long_ago)))
        await reap_swarms.function(_ctx(settings, db, deps, jobs))  # type: ignore[arg-type]
        assert await active_swarms(deps.redis) == []
    finally:
        await jobs.close()
        await clean_queues(deps.redis)
