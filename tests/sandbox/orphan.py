"""A stand-in worker for the reaper tests: starts one sandbox, says so, and waits to be killed.

python -m tests.sandbox.orphan KIND STATE_DIR WORKER_ID SPEC_JSON [RUNTIME_OR_IMAGE DOCKER_HOST]
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

from app.sandbox.runner import Limits, SandboxSpec
from app.sandbox.runners.docker import DockerRunner
from app.sandbox.runners.local import LocalRunner


async def main(kind: str, state: str, worker_id: str, raw: str, extra: str, host: str) -> None:
    data = json.loads(raw)
    spec = SandboxSpec(
        workspace_id=data["workspace_id"],
        sandbox_id=data["sandbox_id"],
        workdir=Path(data["workdir"]),
        channel_dir=Path(data["channel_dir"]),
        command=data["command"],
        limits=Limits(timeout_seconds=300),
    )
    runner: LocalRunner | DockerRunner
    if kind == "local":
        runner = LocalRunner(state_dir=Path(state), worker_id=worker_id, runtime=Path(extra))
    else:
        runner = DockerRunner(image=extra, state_dir=Path(state), worker_id=worker_id, base_url=host)
    await runner.start(spec)
    print("started", flush=True)
    await asyncio.sleep(3600)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:7]))
