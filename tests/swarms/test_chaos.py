"""Chaos: SIGKILL the worker in the middle of a swarm; another worker finishes it, each task completed once."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections import Counter

from app.config import Settings
from app.db import Database
from app.embedded.util import stop_process
from app.execution import ExecutionDeps
from app.live.bus import EventType
from app.llm.scripted import ScriptedServer
from app.queues import Enqueuer
from app.swarms import service
from app.swarms.models import SwarmTask
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.swarms.conftest import add_agents, clean_queues, events_of, finished, start, task
from tests.worker.conftest import wait_for


def spawn(command: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    # Its own session: killing the group kills the worker and the sandboxes it started, as a lost node would.
    return subprocess.Popen(command, env=env, start_new_session=True)


async def test_a_killed_worker_does_not_lose_the_swarm(
    db: Database,
    deps: ExecutionDeps,
    llm: ScriptedServer,
    tenant: Tenant,
    gateway: GatewayServer,
    settings: Settings,
    server_env: dict[str, str],
    tmp_path: object,
) -> None:
    await add_agents(db, tenant.id, "yukihiro")
    llm.register_key(tenant.key, StepScript(delays=dict.fromkeys("abcdef", 1.5)))
    await clean_queues(deps.redis)
    env = {**server_env, "MARID_SANDBOX_FILES_DIR": str(tmp_path)}
    command = [sys.executable, "-m", "tests.swarms.launch", gateway.base_url]
    first = spawn(command, env)
    jobs = Enqueuer(settings.redis_url)
    second: subprocess.Popen[bytes] | None = None
    try:
        request = {
            "agent_id": "yukihiro",
            "max_concurrent": 2,
            "tasks": [task("a"), task("b", "a"), task("c", "a"), task("d", "b"), task("e", "c"), task("f", "d", "e")],
        }
        swarm_id = await start(db, deps, jobs, tenant.id, request)

        async def mid_swarm() -> bool:
            async with db.tenant_session(tenant.id) as session:
                tasks = await service.tasks_of(session, swarm_id)
            done = sum(t.status == "completed" for t in tasks)
            return done >= 1 and any(t.status == "running" for t in tasks)

        await wait_for(mid_swarm, within=90, what="a task done and another running")
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        second = spawn(command, env)
        swarm, tasks = await finished(db, tenant.id, swarm_id, within=180)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                stop_process(process)
        await jobs.close()
    assert swarm.status == "completed", [(t.key, t.status, t.error) for t in tasks]
    assert all(isinstance(t, SwarmTask) and t.status == "completed" for t in tasks)
    completed = Counter(
        e.payload["taskKey"]
        for e in await events_of(deps, tenant.id, swarm_id)
        if e.type == EventType.SWARM_TASK_COMPLETED
    )
    assert completed == Counter("abcdef")  # each exactly once
    assert any(t.attempts > 1 for t in tasks)  # the killed worker's task was taken back and run again
