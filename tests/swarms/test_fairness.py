"""One workspace's big swarm does not keep another workspace's work out of the shared long queue."""

from __future__ import annotations

from app.config import Settings
from app.db import Database
from app.execution import ExecutionDeps
from app.llm.scripted import ScriptedServer
from app.security.crypto import Keyring
from app.security.secrets import SecretsService
from app.swarms import executor as executors
from app.swarms.agent_executor import AgentStepExecutor
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant, make_tenant
from tests.swarms.conftest import Workers, add_agents, clean_queues, finished, start, task


async def test_a_big_swarm_hands_its_slots_back_in_turn(
    settings: Settings,
    db: Database,
    keyring: Keyring,
    secrets_service: SecretsService,
    deps: ExecutionDeps,
    llm: ScriptedServer,
    tenant: Tenant,
    gateway: GatewayServer,
) -> None:
    other = await make_tenant(db, settings, secrets_service, llm.url, "fair")
    for workspace in (tenant, other):
        await add_agents(db, workspace.id, "yukihiro")
        llm.register_key(workspace.key, StepScript())
    await clean_queues(deps.redis)
    executors.install(AgentStepExecutor(deps=deps))
    # Two long slots for everyone; each slot runs one swarm's tasks back to back for half a second at most.
    workers = Workers(settings.model_copy(update={"swarm_slot_turn_seconds": 0.5}), db, keyring, deps, long_slots=2)
    try:
        big = {"agent_id": "yukihiro", "max_concurrent": 2, "tasks": [task(f"t{n}") for n in range(24)]}
        big_id = await start(db, deps, workers.jobs, tenant.id, big)
        small_id = await start(db, deps, workers.jobs, other.id, {"agent_id": "yukihiro", "tasks": [task("only")]})
        small, small_tasks = await finished(db, other.id, small_id, within=120)
        big_swarm, big_tasks = await finished(db, tenant.id, big_id, within=240)
    finally:
        await workers.close()
        executors.install(None)
        await clean_queues(deps.redis)
    assert small.status == "completed", [(t.key, t.status, t.error) for t in small_tasks]
    assert big_swarm.status == "completed", [(t.key, t.status, t.error) for t in big_tasks if t.error]
    (only,) = small_tasks
    assert only.started_at is not None
    # The other workspace's task got a slot while the big swarm still had most of its tasks to run (before the
    # 10-minute chains, both slots ran the big swarm to its end first).
    after = [t for t in big_tasks if t.started_at is not None and t.started_at > only.started_at]
    assert len(after) >= 12, f"only {len(after)} of the big swarm's 24 tasks started after the other's one"
