"""The workspace's own limits: its concurrency holds across all its swarms, its task limit is the validator's."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from sqlalchemy import update

from app.db import Database
from app.execution import ExecutionDeps
from app.sandbox.step import StepControl
from app.swarms import executor as executors
from app.swarms import scheduler, service
from app.swarms.executor import OnTaskEvent, TaskOutcome, TaskRun
from app.swarms.models import SwarmSettings
from tests.llm.gateway import Tenant
from tests.swarms.conftest import Workers, add_agents, finished, max_overlap, start, task

Start = Callable[..., Awaitable[Workers]]


class Waiting:
    """No sandbox: each task waits a little (the limits are the scheduler's, whatever runs the tasks)."""

    async def run(self, task: TaskRun, on_event: OnTaskEvent, control: StepControl) -> TaskOutcome:
        await asyncio.sleep(0.3)
        return TaskOutcome(ok=True)


async def test_the_workspace_concurrency_holds_across_swarms(
    db: Database, deps: ExecutionDeps, tenant: Tenant, workers: Start
) -> None:
    await add_agents(db, tenant.id, "yukihiro")
    async with db.tenant_session(tenant.id) as session:
        await scheduler.limits_row(session)
        await session.execute(update(SwarmSettings).values(workspace_concurrency=3, max_tasks=8))
    running = await workers(long_slots=12)
    executors.install(Waiting())
    request = {"agent_id": "yukihiro", "max_concurrent": 3, "tasks": [task(f"t{i}") for i in range(8)]}
    first = await start(db, deps, running.jobs, tenant.id, request)
    second = await start(db, deps, running.jobs, tenant.id, request)
    (one, tasks_one), (two, tasks_two) = await asyncio.gather(
        finished(db, tenant.id, first), finished(db, tenant.id, second)
    )
    assert one.status == two.status == "completed"
    assert max_overlap(tasks_one + tasks_two) <= 3  # three at once in the workspace, not three per swarm
    too_many = {**request, "tasks": [task(f"t{i}") for i in range(9)]}
    async with db.tenant_session(tenant.id) as session:
        try:
            await service.check_request(session, too_many)
        except service.SwarmInvalid as invalid:
            assert [p.message for p in invalid.problems] == ["9 tasks; this workspace allows up to 8"]
        else:
            raise AssertionError("nine tasks were accepted")
