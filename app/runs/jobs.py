"""The engine's jobs: ``advance_run`` (short queue), ``execute_step`` (long queue), the lease reaper (cron).

Each worker process builds one :class:`~app.runs.engine.Engine` on first use: the configured sandbox runner
(``runner_for``), a supervisor pointed at the gateway, and the worker's database, Redis and bus. Tests and the
bench install their own engine for a worker id (:func:`install_engine`) before the worker starts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from app.execution import ExecutionDeps
from app.execution.worker import worker_supervisor
from app.queues import Enqueuer, JobContext, Queue, cron, job
from app.runs.control import ACTIVE_WORKSPACES
from app.runs.engine import Engine
from app.sandbox.rpc import RpcRegistry
from app.sandbox.supervisor import Supervisor
from app.swarms.tool import swarm_execute_tool

_ENGINES: dict[str, Engine] = {}
_BUILDING = asyncio.Lock()
EngineFactory = Callable[[JobContext], Awaitable[Engine]]
_factory: EngineFactory | None = None


def use_engine_factory(factory: EngineFactory | None) -> None:
    """Build this process's engines with ``factory`` (tests and the bench: another runner, other timings)."""
    global _factory
    _factory = factory
    _ENGINES.clear()


def step_enqueuer(jobs: Enqueuer) -> Callable[[str, str, str, int, int], Awaitable[None]]:
    async def enqueue(workspace_id: str, run_id: str, visit_id: str, attempt: int, generation: int) -> None:
        # One job per (visit, attempt, lease generation): enqueued twice, it still runs once.
        named = execute_step.with_options(job_id=f"run-step:{visit_id}:{attempt}:{generation}")
        await jobs.enqueue(named, workspace_id, run_id, visit_id, attempt)

    return enqueue


async def engine_of(ctx: JobContext, *, sandboxes: bool = True) -> Engine:
    """This worker's engine; ``sandboxes=False`` for deciding only (no runner is built for the short queue)."""
    worker_id = ctx["worker_id"]
    key = worker_id if sandboxes else f"{worker_id}:decide"
    engine = _ENGINES.get(key)
    if engine is not None:
        return engine
    async with _BUILDING:
        engine = _ENGINES.get(key)
        if engine is None and _factory is not None:
            engine = _ENGINES[key] = await _factory(ctx)
        if engine is None:
            settings = ctx["settings"]
            supervisor: Supervisor | None = None
            if sandboxes:
                # The platform tools a pipeline step may call (when its agent's tools allow them).
                tools = RpcRegistry([swarm_execute_tool(ctx["db"], ctx["bus"], ctx["jobs"])])
                supervisor = await worker_supervisor(settings, worker_id, tools)
            deps = ExecutionDeps(
                db=ctx["db"],
                redis=ctx["redis"],
                bus=ctx["bus"],
                supervisor=supervisor,
                files_root=Path(settings.sandbox_files_dir),
            )
            engine = Engine(deps, step_enqueuer(ctx["jobs"]), worker_id=worker_id)
            _ENGINES[key] = engine
    return engine


@job(Queue.SHORT)
async def advance_run(ctx: JobContext, workspace_id: str, run_id: str) -> str:
    """Decide what is next for a run (start it, route a finished step, announce a control) and enqueue it."""
    engine = await engine_of(ctx, sandboxes=False)
    fx = await engine.advance(workspace_id, run_id)
    return f"{len(fx.events)} events, {len(fx.enqueue)} steps queued"


# Longer than any step may run (its own timeout is the supervisor's; a token lives at most 12 hours): arq's
# timeout must never be what ends a step, as a job it cancels is not tried again.
@job(Queue.LONG, timeout=timedelta(hours=13))
async def execute_step(ctx: JobContext, workspace_id: str, run_id: str, visit_id: str, attempt: int) -> str:
    """Run one attempt of one step visit in a sandbox, store its end, and route it."""
    engine = await engine_of(ctx)
    return await engine.execute(workspace_id, run_id, visit_id, attempt)


@job(Queue.SHORT)
async def reap_run_leases(ctx: JobContext) -> int:
    """Steps whose worker stopped beating: queue them again for another worker (same attempt)."""
    engine = await engine_of(ctx, sandboxes=False)
    members = await engine.deps.redis.smembers(ACTIVE_WORKSPACES)  # type: ignore[misc]
    count = 0
    for raw in members:
        workspace_id = raw.decode() if isinstance(raw, bytes) else str(raw)
        count += await engine.reap(workspace_id)
    return count


reap_run_leases_regularly = cron(reap_run_leases, second=set(range(0, 60, 5)), run_at_startup=True)
