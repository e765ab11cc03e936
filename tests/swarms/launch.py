"""``marid worker`` whose swarm tasks run on the process runner against a given gateway (the chaos test):
``python -m tests.swarms.launch <gateway base url>``. Everything else is the production worker."""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from redis.asyncio import Redis

from app.config import get_settings
from app.execution import ExecutionDeps
from app.live.bus import EventBus
from app.queues import Queue
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.runners.process import ProcessRunner
from app.sandbox.session import Deadlines
from app.sandbox.step import StepControl
from app.sandbox.supervisor import Supervisor
from app.swarms import executor
from app.swarms.agent_executor import AgentStepExecutor
from app.swarms.executor import OnTaskEvent, TaskOutcome, TaskRun
from worker.run import run


class ProcessRunnerExecutor:
    def __init__(self, gateway: str) -> None:
        self.gateway = gateway
        self._inner: AgentStepExecutor | None = None

    async def run(self, task: TaskRun, on_event: OnTaskEvent, control: StepControl) -> TaskOutcome:
        if self._inner is None:
            settings = get_settings()
            redis = Redis.from_url(settings.redis_url)
            channels = Path(tempfile.mkdtemp(prefix="mswc-", dir="/tmp"))
            os.chmod(channels, 0o711)
            supervisor = Supervisor(
                ProcessRunner(environment="test"),
                LlmEndpoint(self.gateway),
                channels_root=channels,
                deadlines=Deadlines(hello_seconds=20, idle_seconds=20, grace_seconds=3, exit_seconds=3),
            )
            deps = ExecutionDeps(
                db=settings.database(settings.keyring()),
                redis=redis,
                bus=EventBus(redis),
                supervisor=supervisor,
                files_root=Path(settings.sandbox_files_dir),
            )
            self._inner = AgentStepExecutor(deps=deps)
        return await self._inner.run(task, on_event, control)


if __name__ == "__main__":
    executor.install(ProcessRunnerExecutor(sys.argv[1]))
    sys.exit(run([Queue.SHORT, Queue.LONG]))
