"""Swarms end to end in real workers: the scripted provider behind the gateway, the process runner, Postgres."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Callable

from app.audit.unit_of_work import workspace_change
from app.db import Database
from app.execution import ExecutionDeps
from app.live.bus import EventType
from app.llm.scripted import ScriptedServer
from app.swarms import service
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.swarms.conftest import ACTOR, Workers, add_agents, events_of, finished, max_overlap, start, task
from tests.worker.conftest import wait_for

Start = Callable[..., Awaitable[Workers]]


async def test_a_diamond_runs_in_dependency_order(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer, workers: Start
) -> None:
    await add_agents(db, tenant.id, "yukihiro")
    script = StepScript()
    llm.register_key(tenant.key, script)
    running = await workers()
    request = {
        "agent_id": "yukihiro",
        "max_concurrent": 2,
        "deviation_rules": "Touch only your own note.",
        "tasks": [task("a"), task("b", "a"), task("c", "a"), task("d", "b", "c")],
    }
    swarm_id = await start(db, deps, running.jobs, tenant.id, request)
    swarm, tasks = await finished(db, tenant.id, swarm_id)
    assert swarm.status == "completed", [(t.key, t.status, t.error) for t in tasks]
    assert all(t.status == "completed" and t.attempts == 1 for t in tasks)
    at = {t.key: (t.started_at, t.finished_at) for t in tasks if t.started_at and t.finished_at}
    assert at["a"][1] <= min(at["b"][0], at["c"][0])
    assert max(at["b"][1], at["c"][1]) <= at["d"][0]
    assert max_overlap(tasks) <= 2
    assert sorted(script.completed) == ["a", "b", "c", "d"]
    assert all(len(v) == 1 for v in script.completed.values())
    # Each task saw its prompt and the swarm's deviation rules, and nothing else of the request.
    prompts = [r.prompt_text for r in llm.requests if r.api_key == tenant.key]
    assert any("Write the note for d." in p and "Touch only your own note." in p for p in prompts)
    types = [e.type for e in await events_of(deps, tenant.id, swarm_id)]
    assert types[0] == EventType.SWARM_LAUNCHED and types[-1] == EventType.SWARM_COMPLETED
    assert Counter(types)[EventType.SWARM_TASK_COMPLETED] == 4
    assert EventType.TOOL_CALL_START in types  # the tasks' own events, relayed on the swarm's topic
    assert swarm.summary is not None and swarm.summary["completed"] == 4 and swarm.summary["totalTasks"] == 4
    assert sum(t.cost_usd for t in tasks) > 0


async def test_a_wide_dag_never_exceeds_its_concurrency(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer, workers: Start
) -> None:
    await add_agents(db, tenant.id, "yukihiro")
    llm.register_key(tenant.key, StepScript(delays=dict.fromkeys([f"w{i}" for i in range(10)], 0.3)))
    running = await workers(long_slots=8)
    wide = [task("root")] + [task(f"w{i}", "root") for i in range(10)] + [task("sink", *(f"w{i}" for i in range(10)))]
    swarm_id = await start(
        db, deps, running.jobs, tenant.id, {"agent_id": "yukihiro", "max_concurrent": 3, "tasks": wide}
    )
    swarm, tasks = await finished(db, tenant.id, swarm_id, within=180)
    assert swarm.status == "completed", [(t.key, t.status, t.error) for t in tasks]
    assert max_overlap(tasks) == 3  # used to the full, never beyond
    started = Counter(e.payload["taskKey"] for e in await events_of(deps, tenant.id, swarm_id)
                      if e.type == EventType.SWARM_TASK_STARTED)  # fmt: skip
    assert set(started.values()) == {1} and len(started) == 12


async def test_a_failure_skips_exactly_its_descendants(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer, workers: Start
) -> None:
    await add_agents(db, tenant.id, "yukihiro")
    # b fails twice: one retry is allowed, so it fails for good; "flaky" fails once and is retried into success.
    llm.register_key(tenant.key, StepScript(failures={"b": 2, "flaky": 1}))
    running = await workers()
    request = {
        "agent_id": "yukihiro",
        "max_concurrent": 4,
        "tasks": [
            task("a"),
            task("b", "a", max_retries=1),
            task("c", "b"),
            task("d", "c"),
            task("e", "a", "d"),
            task("flaky", "a", max_retries=1),
            task("f", "flaky"),
        ],
    }
    swarm_id = await start(db, deps, running.jobs, tenant.id, request)
    swarm, tasks = await finished(db, tenant.id, swarm_id)
    status = {t.key: t.status for t in tasks}
    assert status == {
        "a": "completed", "b": "failed", "c": "skipped", "d": "skipped", "e": "skipped",
        "flaky": "completed", "f": "completed",
    }  # fmt: skip
    assert swarm.status == "failed" and swarm.error == "1 task(s) failed"
    by_key = {t.key: t for t in tasks}
    assert by_key["b"].attempts == 2 and by_key["b"].error == "b broke on purpose"
    assert by_key["flaky"].attempts == 2 and by_key["flaky"].failures == 1
    assert all("'b'" in (by_key[k].error or "") for k in ("c", "d", "e"))
    events = await events_of(deps, tenant.id, swarm_id)
    skipped = sorted(e.payload["taskKey"] for e in events if e.type == EventType.SWARM_TASK_SKIPPED)
    assert skipped == ["c", "d", "e"]
    assert [e.payload["taskKey"] for e in events if e.type == EventType.STEP_RETRYING] == ["b", "flaky"] or sorted(
        e.payload["taskKey"] for e in events if e.type == EventType.STEP_RETRYING
    ) == ["b", "flaky"]
    assert events[-1].type == EventType.SWARM_FAILED and events[-1].payload["summary"]["skipped"] == 3


async def test_cancel_stops_running_tasks_and_their_sandboxes(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer, workers: Start
) -> None:
    await add_agents(db, tenant.id, "yukihiro")
    llm.register_key(tenant.key, StepScript(delays=dict.fromkeys("abcd", 60)))  # every task hangs in its first answer
    running = await workers()
    request = {"agent_id": "yukihiro", "max_concurrent": 2,
               "tasks": [task("a"), task("b"), task("c", "a"), task("d")]}  # fmt: skip
    swarm_id = await start(db, deps, running.jobs, tenant.id, request)
    assert deps.supervisor is not None
    runner = deps.supervisor.runner

    async def two_sandboxes() -> bool:
        return len(await runner.list_owned()) == 2

    await wait_for(two_sandboxes, within=60, what="two running sandboxes")
    async with workspace_change(db, deps.bus, tenant.id) as s:
        notes = await service.cancel_swarm(s, tenant.id, ACTOR, swarm_id)
    await service.nudge(deps.bus, tenant.id, swarm_id, notes)

    async def no_sandboxes() -> bool:
        return not await runner.list_owned()

    took = await wait_for(no_sandboxes, within=15, what="the sandboxes to be destroyed")
    assert took < 10
    swarm, tasks = await finished(db, tenant.id, swarm_id)
    assert swarm.status == "cancelled"
    assert {t.key: t.status for t in tasks} == dict.fromkeys("abcd", "cancelled")
    await asyncio.sleep(3)  # the aborted attempts come back: they must change nothing
    _, after = await finished(db, tenant.id, swarm_id)
    assert {t.key: t.status for t in after} == dict.fromkeys("abcd", "cancelled")
    types = [e.type for e in await events_of(deps, tenant.id, swarm_id)]
    assert EventType.SWARM_TASK_COMPLETED not in types and types.count(EventType.SWARM_FAILED) == 1
