"""The pipeline engine's overhead per step, next to a bare arq job round trip measured in the same run.

    .venv/bin/python bench/engine.py [--steps 200] [--round-trips 200]

Starts a private PostgreSQL and Redis, migrates, makes a workspace with one agent and a linear pipeline of
``--steps`` steps, and runs a short-queue and a long-queue arq worker in this process with the real engine
(``app.runs``: claim, lease and heartbeat, token minted and revoked, prompt assembled, events relayed, outputs
stored, the run advanced) over a **no-op runner**: its "sandbox" is a coroutine that answers the channel's
``hello`` / ``start`` with an immediate ``complete``, so what is measured is the engine, not an agent.

- **bare round trip**: ``--round-trips`` times, one at a time, a job that does nothing is enqueued on the long
  queue and the time until it has run is taken (arq's poll and pick-up, what any queued step pays once);
- **engine per step**: the run's wall time (start to RUN_COMPLETE in Postgres) divided by its steps;
- **overhead per step**: engine per step minus the bare round trip. Goal (issue 13): <= 25 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

from arq.connections import RedisSettings
from redis.asyncio import Redis

from app.agents.models import Agent
from app.audit.actor import Actor
from app.audit.unit_of_work import workspace_change
from app.config import Settings
from app.db import Database
from app.embedded import EmbeddedPostgres, EmbeddedRedis
from app.execution import ExecutionDeps
from app.live.bus import EventBus
from app.pipelines.service import save_pipeline
from app.queues import Enqueuer, JobContext, Queue, job
from app.runs import jobs as runs_jobs
from app.runs.control import Tuning
from app.runs.dispatch import kick
from app.runs.engine import Engine
from app.runs.jobs import step_enqueuer, use_engine_factory
from app.runs.models import Run
from app.runs.service import start_run
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.runner import CHANNEL_SOCKET, SandboxRecord, SandboxSpec
from app.sandbox.supervisor import Supervisor
from app.workspaces.service import create_workspace
from worker.arq_worker import MaridWorker
from worker.settings import WORKER_SETTINGS, worker_options

ROOT = Path(__file__).resolve().parent.parent
GOAL_MS = 25.0
ACTOR = Actor.system("bench")
_arrived: dict[str, asyncio.Future[float]] = {}


@job(Queue.LONG, name="bench.engine.echo")
async def echo(ctx: JobContext, key: str) -> None:
    """The bare job: note that it ran."""
    found = _arrived.get(key)
    if found is not None and not found.done():
        found.set_result(time.perf_counter())


# -- the no-op runner -------------------------------------------------------------------------------------------


class NoopSandbox:
    """A "sandbox" that speaks the channel protocol in this process and completes every step at once."""

    def __init__(self, spec: SandboxSpec) -> None:
        self.sandbox_id = spec.sandbox_id
        self.spec = spec
        self.task = asyncio.create_task(self._talk())

    async def _talk(self) -> int:
        reader, writer = await asyncio.open_unix_connection(str(self.spec.channel_dir / CHANNEL_SOCKET))

        def send(frame: dict[str, Any]) -> None:
            writer.write(json.dumps({"v": 1, **frame}).encode() + b"\n")

        send({"type": "hello", "runtime": "noop", "protocol": 1, "pid": os.getpid()})
        try:
            while line := await reader.readline():
                frame = json.loads(line)
                if frame.get("type") == "start":
                    outputs = {name: "ok" for name in frame["step"].get("outputs", [])}
                    send({"type": "result", "status": "complete", "outputs": outputs, "summary": "noop"})
                    await writer.drain()
                elif frame.get("type") == "shutdown":
                    break
        finally:
            writer.close()
        return 0

    async def wait(self) -> int:
        try:
            return await asyncio.shield(self.task)
        except (asyncio.CancelledError, OSError):
            return 137

    async def kill(self) -> None:
        if not self.task.done():
            self.task.cancel()

    async def remove(self) -> None:
        await self.kill()


class NoopRunner:
    name = "noop"

    async def start(self, spec: SandboxSpec) -> NoopSandbox:
        return NoopSandbox(spec)

    async def list_owned(self) -> list[SandboxRecord]:
        return []

    async def destroy(self, sandbox_id: str) -> None:
        return None


class TimedEngine(Engine):
    """The engine, with the time spent inside each execute_step job added up."""

    busy_ms: list[float]

    async def execute(self, workspace_id: str, run_id: str, visit_id: str, attempt: int) -> str:
        began = time.perf_counter()
        try:
            return await super().execute(workspace_id, run_id, visit_id, attempt)
        finally:
            self.busy_ms = [*getattr(self, "busy_ms", []), (time.perf_counter() - began) * 1000]


# -- set-up and measuring ---------------------------------------------------------------------------------------


def linear_pipeline(steps: int) -> str:
    lines = ["id: linear", "name: Linear bench", "version: '1'", "agents: [{id: bench, name: Bench}]", "steps:"]
    for index in range(steps):
        following = f", onComplete: S{index + 1}" if index + 1 < steps else ""
        lines.append(f"  - {{id: S{index}, agent: bench, input: 'Step {index} of {{{{task_description}}}}', "
                     f"outputs: [out{index}]{following}}}")  # fmt: skip
    return "\n".join(lines) + "\n"


async def measure(settings: Settings, steps: int, round_trips: int, files: Path, channels: Path) -> dict[str, float]:
    keyring = settings.keyring()
    db = Database(settings.database_url, keyring=keyring, pool_size=5)
    redis = Redis.from_url(settings.redis_url)
    bus = EventBus(redis)
    jobs = Enqueuer(settings.redis_url)
    supervisor = Supervisor(NoopRunner(), LlmEndpoint("http://127.0.0.1:9/unused"), channels_root=channels)
    deps = ExecutionDeps(db=db, redis=redis, bus=bus, supervisor=supervisor, files_root=files)
    engine = TimedEngine(deps, step_enqueuer(jobs), worker_id="bench", tuning=Tuning(30, 5))

    async def factory(ctx: JobContext) -> Engine:
        return engine

    use_engine_factory(factory)
    module = sys.modules[__name__]
    ctx: dict[str, Any] = {
        "settings": settings, "db": db, "bus": bus, "jobs": jobs, "locks": defaultdict(asyncio.Lock),
        "worker_id": "bench",
    }  # fmt: skip
    workers = [
        MaridWorker(
            **worker_options(WORKER_SETTINGS[queue], (runs_jobs, module)),
            redis_settings=RedisSettings.from_dsn(settings.redis_url),
            ctx={**ctx, "queue": queue},
            handle_signals=False,
        )
        for queue in (Queue.SHORT, Queue.LONG)
    ]
    tasks = [asyncio.create_task(worker.main()) for worker in workers]
    for worker, task in zip(workers, tasks, strict=True):
        worker.main_task = task  # so that close() stops its loop and lets running jobs end
    try:
        async with db.public_session() as session:
            workspace = await create_workspace(session, name="Bench", slug=f"bench-{secrets.token_hex(3)}")
        async with workspace_change(db, bus, workspace.id) as session:
            session.add(Agent(id="bench", name="Bench", role="Bench", model="bench/noop", tools=[]))
            await session.flush()
            await save_pipeline(session, yaml=linear_pipeline(steps), actor=ACTOR, known_agents=["bench"])

        # The bare round trip, one job at a time (a warm-up first).
        samples: list[float] = []
        for index in range(round_trips + 5):
            key = f"rt-{index}"
            _arrived[key] = asyncio.get_running_loop().create_future()
            began = time.perf_counter()
            await jobs.enqueue(echo, key)
            ended = await asyncio.wait_for(_arrived[key], 10)
            if index >= 5:
                samples.append((ended - began) * 1000)

        async def one_run(step_count: int) -> float:
            async with workspace_change(db, bus, workspace.id) as session:
                run = await start_run(session, pipeline_id="linear", task="measure", actor=ACTOR)
            began = time.perf_counter()
            await kick(jobs, workspace.id, run.id)
            while True:
                async with db.tenant_session(workspace.id) as session:
                    status = await session.scalar(
                        Run.__table__.select().with_only_columns(Run.status).where(Run.id == run.id)
                    )
                if status in ("completed", "failed", "cancelled"):
                    break
                await asyncio.sleep(0.02)
            elapsed = time.perf_counter() - began
            if status != "completed":
                raise RuntimeError(f"the bench run ended {status}")
            return elapsed * 1000 / step_count

        per_step = await one_run(steps)
        await asyncio.sleep(0.5)  # the last job's tail (events, the final advance) before the workers stop
        busy = engine.busy_ms[-steps:]
        return {
            "job_p50": statistics.median(busy),
            "job_mean": statistics.fmean(busy),
            "steps": steps,
            "round_trip_p50": statistics.median(samples),
            "round_trip_mean": statistics.fmean(samples),
            "per_step": per_step,
        }
    finally:
        for worker in workers:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                await worker.close()
        await asyncio.gather(*tasks, return_exceptions=True)
        use_engine_factory(None)
        await supervisor.aclose()
        await jobs.close()
        await redis.aclose()
        await db.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="marid-bench-engine-"))
    channels = Path(tempfile.mkdtemp(prefix="mgb-", dir="/tmp"))
    os.chmod(root, 0o755)
    pg = EmbeddedPostgres(root / "pg", durable=False)
    redis = EmbeddedRedis(root / "redis", durable=False)
    try:
        pg.start()
        redis.start()
        database_url = asyncio.run(pg.ensure_database())
        env = {**os.environ, "MARID_ENV": "test", "MARID_DATABASE_URL": database_url, "MARID_REDIS_URL": redis.url}
        subprocess.run([sys.executable, "-m", "app.cli", "migrate"], env=env, check=True, cwd=ROOT)
        settings = Settings(env="test", database_url=database_url, redis_url=redis.url)
        result = asyncio.run(measure(settings, args.steps, args.round_trips, root / "files", channels))
    finally:
        redis.stop()
        pg.stop()
        shutil.rmtree(root, ignore_errors=True)
        shutil.rmtree(channels, ignore_errors=True)
    overhead = result["per_step"] - result["round_trip_mean"]
    print(f"engine: {result['steps']:.0f}-step linear pipeline, no-op runner")
    p50, mean = result["round_trip_p50"], result["round_trip_mean"]
    print(f"  bare arq round trip (long queue): p50 {p50:.1f} ms, mean {mean:.1f} ms")
    print(f"  engine per step (run wall time):  {result['per_step']:.1f} ms")
    job_p50, job_mean = result["job_p50"], result["job_mean"]
    print(f"  inside each execute_step job:     p50 {job_p50:.1f} ms, mean {job_mean:.1f} ms")
    print(f"  engine overhead per step:         {overhead:.1f} ms (goal <= {GOAL_MS:.0f} ms)")
    return 0 if overhead <= GOAL_MS else 1


if __name__ == "__main__":
    sys.exit(main())
