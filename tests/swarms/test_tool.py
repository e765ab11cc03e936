"""An agent starts a swarm through the ``swarm_execute`` tool (a sandbox RPC): a real step in a sandbox, the
scripted model calling the tool, the swarm run by real workers; a bad DAG comes back as one error naming all."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.db import Database
from app.execution import ExecutionDeps, StepRequest, StepSettings, execute_agent_step
from app.llm.scripted import Reply, ScriptedServer
from app.llm.scripted.request import ChatRequest
from app.llm.scripted.script import ToolCall
from app.sandbox.rpc import RpcRegistry
from app.sandbox.supervisor import Supervisor
from app.swarms import service
from app.swarms.tool import swarm_execute_tool
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.swarms.conftest import Workers, add_agents, finished, task

Start = Callable[..., Awaitable[Workers]]
DAG: dict[str, Any] = {"agent_id": "yukihiro", "max_concurrent": 2, "wait_seconds": 120,
                       "tasks": [task("a"), task("b", "a"), task("c", "a")]}  # fmt: skip


@dataclass
class Planner:
    """The planning step calls swarm_execute with ``request``, then completes with what came back; the swarm's
    own tasks are answered by a StepScript."""

    request: dict[str, Any]
    executor: StepScript = field(default_factory=StepScript)
    answers: list[str] = field(default_factory=list)

    def respond(self, request: ChatRequest) -> Reply:
        if "of the pipeline “swarm”" in request.prompt_text:
            return self.executor.respond(request)
        called = request.called_tools
        if "complete" in called:
            return Reply(text="Done.")
        if "swarm_execute" not in called:
            return Reply(tool_calls=[ToolCall(name="swarm_execute", arguments=self.request)])
        results = request.trailing_tool_results
        self.answers.append(results[-1].text if results else "")
        return Reply(tool_calls=[ToolCall(name="complete", arguments={"outputs": {"plan": "ran"}})])


async def _plan(deps: ExecutionDeps, tenant: Tenant, running: Workers) -> Any:
    tool = swarm_execute_tool(deps.db, deps.bus, running.jobs)
    base = deps.supervisor
    assert base is not None
    supervisor = Supervisor(
        base.runner, base.llm, channels_root=base.channels_root, rpc=RpcRegistry([tool]), deadlines=base.deadlines
    )
    planning = ExecutionDeps(deps.db, deps.redis, deps.bus, supervisor, deps.files_root)
    request = StepRequest(
        workspace_id=tenant.id, scope_id="run-plan", step_id="plan-1", agent_id="planner", input="Plan it.",
        step_name="PLAN", pipeline_name="planning", outputs=("plan",),
        settings=StepSettings(timeout_seconds=180, tools=("read", "swarm_execute")),
    )  # fmt: skip
    try:
        return await execute_agent_step(planning, request)
    finally:
        await supervisor.aclose()


async def test_an_agent_starts_a_swarm_and_waits_for_its_summary(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer, workers: Start
) -> None:
    await add_agents(db, tenant.id, "yukihiro", "planner")
    planner = Planner(DAG)
    llm.register_key(tenant.key, planner)
    running = await workers()
    outcome = await _plan(deps, tenant, running)
    assert outcome.status == "complete", outcome.error
    answer = json.loads(planner.answers[0])
    assert answer["status"] == "completed" and answer["total_tasks"] == 3 and answer["dag_depth"] == 2
    assert {r["key"]: r["status"] for r in answer["taskResults"]} == dict.fromkeys("abc", "completed")
    swarm, tasks = await finished(db, tenant.id, answer["swarm_id"])
    assert swarm.origin == "agent" and swarm.status == "completed" and len(tasks) == 3


async def test_a_bad_dag_from_an_agent_is_one_error_naming_every_problem(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer, workers: Start
) -> None:
    await add_agents(db, tenant.id, "yukihiro", "planner")
    bad = {"agent_id": "yukihiro", "tasks": [task("a", "b"), task("b", "a"), task("c", "nope")]}
    planner = Planner(bad)
    llm.register_key(tenant.key, planner)
    running = await workers()
    outcome = await _plan(deps, tenant, running)
    assert outcome.status == "complete", outcome.error
    said = planner.answers[0]
    assert "the swarm was not started" in said and "a → b → a" in said and "'nope'" in said
    async with db.tenant_session(tenant.id) as session:
        assert await service.list_swarms(session) == []
