"""Chaos: a worker killed with SIGKILL in the middle of a step. Another worker finds the step by its expired
lease (the reaper), runs it again (same attempt), and the run completes: each step completed exactly once,
no output lost, the dead worker's token revoked with the run."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from redis.asyncio import Redis
from sqlalchemy import select

from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.embedded.util import stop_process
from app.execution import ExecutionDeps
from app.live.bus import EventBus, EventType
from app.llm.scripted import ScriptedServer
from app.pipelines.service import save_pipeline
from app.queues import Enqueuer
from app.runs.models import RunStep
from tests.execution.conftest import add_agents
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.runs.harness import LINEAR, PERSON, events_of, finished, queue_url, started_run, until_run, wait_until


@contextmanager
def engine_process(env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen([sys.executable, "-m", "tests.runs.launch_engine"], env=env)
    try:
        yield process
    finally:
        stop_process(process)


async def test_a_worker_killed_mid_step_loses_nothing(
    db: Database,
    settings: Settings,
    server_env: dict[str, str],
    deps: ExecutionDeps,
    llm: ScriptedServer,
    tenant: Tenant,
    gateway: GatewayServer,
    queue_redis: Redis,
) -> None:
    await add_agents(db, tenant.id, "finn")
    async with workspace_change(db, deps.bus, tenant.id) as session:
        await save_pipeline(session, yaml=LINEAR, actor=PERSON, known_agents=["finn"])
    script = StepScript(delays={"TWO": 1.5})  # under the gateway's 2 s read timeout of the tests
    llm.register_key(tenant.key, script)
    files = Path(tempfile.mkdtemp(prefix="marid-chaos-files-"))
    env = {
        **server_env,
        "MARID_REDIS_URL": queue_url(settings),
        "MARID_BASE_URL": gateway.url,
        "MARID_SANDBOX_FILES_DIR": str(files),
        "MARID_RUN_LEASE_SECONDS": "3",
        "MARID_RUN_HEARTBEAT_SECONDS": "1",
    }
    bus = EventBus(queue_redis)
    jobs = Enqueuer(queue_url(settings))
    try:
        with engine_process(env) as first:
            run_id = await started_run(db, bus, jobs, tenant.id, "linear", "Count to three.")

            async def two_is_thinking() -> bool:
                async with db.tenant_session(tenant.id) as session:
                    running = await session.scalar(
                        select(RunStep.id).where(RunStep.run_id == run_id, RunStep.step_id == "TWO")
                        .where(RunStep.status == "running")
                    )  # fmt: skip
                asked = any("This is step TWO" in r.prompt_text for r in llm.requests if r.api_key == tenant.key)
                return running is not None and asked

            await wait_until(two_is_thinking, 60, "step TWO to be running")
            os.kill(first.pid, signal.SIGKILL)
            first.wait(10)
        assert "TWO" not in script.completed  # it died before TWO could complete
        with engine_process(env):
            view = await until_run(db, tenant.id, run_id, finished, seconds=90)
    finally:
        await jobs.close()
        shutil.rmtree(files, ignore_errors=True)
    assert view.status == "completed", (view.reason, [(s.step_id, s.status, s.error) for s in view.steps])
    assert [(s.step_id, s.status, s.attempt) for s in view.steps] == [
        ("ONE", "completed", 1),
        ("TWO", "completed", 1),  # taken over: the same attempt, not a retry
        ("THREE", "completed", 1),
    ]
    assert {name: len(outputs) for name, outputs in script.completed.items()} == {"ONE": 1, "TWO": 1, "THREE": 1}
    assert set(view.outputs) == {"first", "second", "third"}
    async with db.tenant_session(tenant.id) as session:
        generations = dict(
            (
                await session.execute(select(RunStep.step_id, RunStep.lease_generation).where(RunStep.run_id == run_id))
            ).all()
        )
    assert generations == {"ONE": 0, "TWO": 1, "THREE": 0}
    events = await events_of(bus, tenant.id, run_id)
    completes = Counter(e.payload["stepId"] for e in events if e.type is EventType.STEP_COMPLETE)
    assert completes == {"ONE": 1, "TWO": 1, "THREE": 1}
    requeued = [e for e in events if e.type is EventType.STEP_QUEUED and e.payload.get("via") == "lease expired"]
    assert [e.payload["stepId"] for e in requeued] == ["TWO"]
    assert [e.type for e in events].count(EventType.RUN_COMPLETE) == 1
