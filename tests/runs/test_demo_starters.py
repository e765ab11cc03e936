"""Every starter pipeline runs to its end on the demo model (what a new user without a key watches): the steps
that a loop goes over answer a JSON array, and routing hints list the values that move the run on first."""

from __future__ import annotations

import pytest
from redis.asyncio import Redis

from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.llm.scripted import DemoModel, ScriptedServer
from app.pipelines.service import add_starter
from tests.execution.conftest import add_agents
from tests.llm.gateway import GatewayServer, Tenant
from tests.runs.harness import PERSON, engine_workers, finished, started_run, until_run

TEAM = ("product-owner", "architect", "ux-designer", "software-engineer", "test-engineer", "sre")


@pytest.mark.parametrize("starter", ["engineering", "feature", "bugfix", "planning"])
async def test_each_starter_completes_on_the_demo_model(
    starter: str,
    db: Database,
    settings: Settings,
    deps: ExecutionDeps,
    llm: ScriptedServer,
    tenant: Tenant,
    gateway: GatewayServer,
    queue_redis: Redis,
) -> None:
    await add_agents(db, tenant.id, *TEAM)
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await add_starter(session, starter, PERSON, TEAM)
    llm.register_key(tenant.key, DemoModel(chunk_delay=0))
    async with engine_workers(settings, deps) as jobs:
        run_id = await started_run(db, deps.bus, jobs, tenant.id, starter, "Add a health endpoint.")
        view = await until_run(db, tenant.id, run_id, finished)
    assert view.status == "completed", (view.reason, [(s.step_id, s.status, s.error) for s in view.steps])
    # No step went back: each was visited once (a loop's steps once per item, and the demo gives one item).
    visited = [s.step_id for s in view.steps]
    assert len(visited) == len(set(visited)), visited
