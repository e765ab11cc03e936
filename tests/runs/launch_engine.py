"""``marid worker`` (both queues) with the engine on the process runner: ``python -m tests.runs.launch_engine``.

Everything is the production worker (``worker.run.run``: settings from the environment, context, signals,
the reaper cron) except the engine's sandbox runner, which is the test's process runner.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from app.execution import ExecutionDeps
from app.llm.tokens import gateway_base_url
from app.queues import JobContext, Queue
from app.runs.engine import Engine
from app.runs.jobs import step_enqueuer, use_engine_factory
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.runners.process import ProcessRunner
from app.sandbox.session import Deadlines
from app.sandbox.supervisor import Supervisor
from worker.run import run


async def factory(ctx: JobContext) -> Engine:
    settings = ctx["settings"]
    supervisor = Supervisor(
        ProcessRunner(environment=settings.env, worker_id=ctx["worker_id"]),
        LlmEndpoint(gateway_base_url(settings)),
        channels_root=Path(tempfile.mkdtemp(prefix="mgc-", dir="/tmp")),
        deadlines=Deadlines(hello_seconds=20, idle_seconds=20, grace_seconds=3, exit_seconds=3),
        worker_id=ctx["worker_id"],
    )
    deps = ExecutionDeps(
        db=ctx["db"],
        redis=ctx["redis"],
        bus=ctx["bus"],
        supervisor=supervisor,
        files_root=Path(settings.sandbox_files_dir),
    )
    return Engine(deps, step_enqueuer(ctx["jobs"]), worker_id=ctx["worker_id"])


if __name__ == "__main__":
    use_engine_factory(factory)
    sys.exit(run([Queue.SHORT, Queue.LONG]))
