"""``ProcessRunner``: a sandbox that is only a child process. NO ISOLATION: for tests and development only.

It implements the runner interface with a plain subprocess (its own session, so ``kill`` reaches everything it
started) and nothing else: no namespaces, no cgroups, no other uid, the host's network and files. It exists so
that the supervisor and the agent runtime can be tested with real processes and sockets, and run before the
isolating runners (local, docker) are there. It refuses to be made in production.

What it does give the child: a clean environment (never the worker's: no database URL, no keys), the channel
as ``MARID_CHANNEL=unix:<channel_dir>/channel.sock`` and the workdir as ``MARID_WORKSPACE`` (no mounts here,
so the runtime is told the host paths), the workdir as its current folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
from dataclasses import dataclass

from app.sandbox.runner import CHANNEL_SOCKET, SandboxRecord, SandboxSpec

# The only variables of the worker's environment a child sees.
_PASSED = ("PATH", "LANG", "LC_ALL", "TZ")


class ProcessRunnerRefused(RuntimeError):
    pass


@dataclass
class ProcessSandbox:
    sandbox_id: str
    workspace_id: str
    worker_id: str
    process: asyncio.subprocess.Process
    removed: bool = False

    async def wait(self) -> int:
        code = await self.process.wait()
        # Like a shell (and Docker): killed by signal N is 128 + N.
        return 128 - code if code < 0 else code

    async def kill(self) -> None:
        # The whole process group, even when the main process is gone: what it started may not be.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)

    async def remove(self) -> None:
        await self.kill()
        if self.process.returncode is None:
            await self.process.wait()
        self.removed = True


class ProcessRunner:
    """Test and development only: no isolation whatsoever (see the module's docstring)."""

    name = "process"

    def __init__(self, *, environment: str, worker_id: str = "") -> None:
        """``environment``: the settings' ``env`` (dev, test, production); production is refused."""
        if environment not in ("dev", "test"):
            raise ProcessRunnerRefused(
                f"the process runner has no isolation and runs only in dev or test, not in {environment!r}"
            )
        self.worker_id = worker_id
        self._sandboxes: dict[str, ProcessSandbox] = {}

    async def start(self, spec: SandboxSpec) -> ProcessSandbox:
        if spec.sandbox_id in self._sandboxes and not self._sandboxes[spec.sandbox_id].removed:
            raise ValueError(f"sandbox {spec.sandbox_id} already exists")
        command = list(spec.command) if spec.command else [sys.executable, "-m", "agent_runtime"]
        env = {k: os.environ[k] for k in _PASSED if k in os.environ}
        env.update(
            {
                "HOME": str(spec.workdir),
                "PYTHONUNBUFFERED": "1",
                "PYTHONDONTWRITEBYTECODE": "1",
                **spec.env,
                "MARID_CHANNEL": f"unix:{spec.channel_dir / CHANNEL_SOCKET}",
                "MARID_WORKSPACE": str(spec.workdir),
            }
        )
        process = await asyncio.create_subprocess_exec(
            *command,
            cwd=spec.workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            start_new_session=True,
        )
        sandbox = ProcessSandbox(spec.sandbox_id, spec.workspace_id, spec.labels.get("marid.worker", ""), process)
        self._sandboxes[spec.sandbox_id] = sandbox
        return sandbox

    async def list_owned(self) -> list[SandboxRecord]:
        return [
            SandboxRecord(s.sandbox_id, s.workspace_id, s.worker_id or self.worker_id, s.process.returncode is None)
            for s in self._sandboxes.values()
            if not s.removed
        ]

    async def destroy(self, sandbox_id: str) -> None:
        sandbox = self._sandboxes.get(sandbox_id)
        if sandbox is not None:
            await sandbox.remove()
