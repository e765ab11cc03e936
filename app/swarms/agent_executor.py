"""The production executor: each task attempt is one agent step through ``app.execution`` (the path the
pipeline engine uses too: a gateway token minted and revoked, the agent's prompt, a fresh sandbox).

Events go straight to the swarm's topic under the run/step names (``STEP_OUTPUT``, ``TOOL_CALL_START`` ...)
with the task's key in every payload, so the swarm page can stream each task's output.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from app.execution import ExecutionDeps, StepRequest, StepSettings, execute_agent_step
from app.execution.worker import worker_supervisor
from app.live.bus import Topic
from app.queues import JobContext
from app.sandbox.rpc import RpcRegistry
from app.sandbox.step import StepControl
from app.sandbox.supervisor import Supervisor
from app.swarms.executor import OnTaskEvent, TaskExecutor, TaskOutcome, TaskRun, installed

# One supervisor per worker process (its runner and HTTP client are reused across steps).
_supervisors: dict[str, Supervisor] = {}
_lock = asyncio.Lock()


async def _supervisor(ctx: JobContext) -> Supervisor:
    async with _lock:
        found = _supervisors.get(ctx["worker_id"])
        if found is None:
            found = await worker_supervisor(ctx["settings"], ctx["worker_id"], registry())
            _supervisors[ctx["worker_id"]] = found
        return found


def registry() -> RpcRegistry:
    """The platform tools a swarm's own steps may call (an agent in a swarm may not launch another swarm)."""
    return RpcRegistry()


class AgentStepExecutor:
    """From a worker's context (its own supervisor on the configured runner), or from ready ``deps`` (tests)."""

    def __init__(self, ctx: JobContext | None = None, *, deps: ExecutionDeps | None = None) -> None:
        if ctx is None and deps is None:
            raise ValueError("an executor needs a worker's context or execution dependencies")
        self.ctx = ctx
        self._deps = deps

    async def deps(self) -> ExecutionDeps:
        if self._deps is not None:
            return self._deps
        ctx = self.ctx
        assert ctx is not None
        return ExecutionDeps(
            db=ctx["db"],
            redis=ctx["bus"].redis,
            bus=ctx["bus"],
            supervisor=await _supervisor(ctx),
            files_root=Path(ctx["settings"].sandbox_files_dir),
        )

    async def run(self, task: TaskRun, on_event: OnTaskEvent, control: StepControl) -> TaskOutcome:
        request = StepRequest(
            workspace_id=task.workspace_id,
            scope_id=task.swarm_id,
            step_id=task.step_id,
            agent_id=task.agent_id,
            input=task.prompt,
            # The key names the step in the prompt ('This is step <key> ...'): short and unique in the swarm.
            step_name=task.key,
            pipeline_name="swarm",
            settings=StepSettings(timeout_seconds=float(task.timeout_seconds)),
            model=task.model,
            # Every task works in its own directory of the swarm (executor sessions share nothing but files
            # the tasks hand over through their outputs).
            workdir_name=task.key,
            topic=Topic.swarm(task.swarm_id),
            event_base={"swarmId": task.swarm_id, "taskKey": task.key, "attempt": task.attempt},
            control=control,
        )
        outcome = await execute_agent_step(await self.deps(), request, on_event)
        return TaskOutcome(
            ok=outcome.ok,
            outputs=dict(outcome.outputs),
            summary=outcome.summary or "",
            error=None if outcome.ok else (outcome.error or f"the step ended: {outcome.status}"),
            cost_usd=outcome.cost,
            input_tokens=outcome.usage.input_tokens,
            output_tokens=outcome.usage.output_tokens,
            sandbox_id=None,
        )


def executor_for(ctx: JobContext) -> TaskExecutor:
    """The executor of this worker's swarm tasks: one installed for tests or the bench, else the real one."""
    return installed() or AgentStepExecutor(ctx)
