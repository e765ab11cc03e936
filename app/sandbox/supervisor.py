"""The sandbox supervisor: runs one agent step in a fresh sandbox and returns what came of it.

How the pipeline engine (or a chat session) calls it, from a job on the long-work queue::

    supervisor = Supervisor(runner, LlmEndpoint(base_url=gateway_url), rpc=registry, channels_root=path)
    control = StepControl()                       # control.abort(reason), control.inject(text) while it runs
    result = await supervisor.run_step(
        step,                                     # AgentStep: prompt, input, tools, model, limits, outputs
        workspace_id=ws, workdir=ws_files,        # the workspace's own folder, mounted as /workspace
        llm_token=token,                          # the step's short-lived gateway token
        on_event=relay,                           # async callback per event (into the run's Redis stream)
        control=control,
    )                                             # StepResult: status, outputs, summary, error, usage, files
    await supervisor.aclose()

Whatever happens (a result, a timeout, a broken sandbox, the caller's own cancellation), the sandbox is killed
and removed before ``run_step`` returns or raises. An exception raised by ``on_event`` ends the step the same
way and propagates: the relay is the caller's, and a step whose events cannot be recorded should not go on.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

from app.sandbox.channel import MAX_SOCKET_PATH, ChannelLimits
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.rpc import RpcRegistry
from app.sandbox.runner import CHANNEL_SOCKET, Limits, Runner, SandboxSpec
from app.sandbox.session import Deadlines, OnEvent, StepSession
from app.sandbox.step import AgentStep, StepControl, StepResult

_SANDBOX_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class Supervisor:
    def __init__(
        self,
        runner: Runner,
        llm: LlmEndpoint,
        *,
        channels_root: Path,
        rpc: RpcRegistry | None = None,
        limits: ChannelLimits | None = None,
        deadlines: Deadlines | None = None,
        worker_id: str = "",
    ) -> None:
        """``channels_root``: a folder of the worker's, with a short path (a unix socket path has at most 107
        bytes), where each sandbox gets its channel folder."""
        longest = channels_root / ("x" * 64) / CHANNEL_SOCKET
        if len(os.fsencode(longest)) > MAX_SOCKET_PATH:
            raise ValueError(f"channels_root is too long for unix socket paths (at most 107 bytes): {longest}")
        self.runner = runner
        self.llm = llm
        self.channels_root = channels_root
        self.rpc = rpc or RpcRegistry()
        self.limits = limits or ChannelLimits()
        self.deadlines = deadlines or Deadlines()
        self.worker_id = worker_id
        self._http = llm.client()

    async def run_step(
        self,
        step: AgentStep,
        *,
        workspace_id: str,
        workdir: Path,
        llm_token: str,
        on_event: OnEvent | None = None,
        control: StepControl | None = None,
        sandbox_id: str | None = None,
        sandbox_limits: Limits | None = None,
        command: list[str] | None = None,
        env: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
        rpc_context: Mapping[str, Any] | None = None,
    ) -> StepResult:
        """Run ``step`` in a new sandbox over ``workdir``. ``command`` replaces the runner's agent runtime (tests)."""
        sandbox_id = sandbox_id or f"step-{uuid.uuid4().hex[:16]}"
        if not _SANDBOX_ID.match(sandbox_id):
            raise ValueError(f"a sandbox id is letters, digits, '-' and '_': {sandbox_id!r}")
        limits = sandbox_limits or Limits()
        # The runner's wall clock is a backstop behind the supervisor's own deadlines.
        wall = step.timeout_seconds + self.deadlines.hello_seconds + 2 * self.deadlines.grace_seconds
        if limits.timeout_seconds < wall:
            limits = Limits(**{**limits.__dict__, "timeout_seconds": wall})
        spec = SandboxSpec(
            workspace_id=workspace_id,
            sandbox_id=sandbox_id,
            workdir=workdir,
            channel_dir=self.channels_root / sandbox_id,
            command=command,
            env=dict(env or {}),
            limits=limits,
            labels={
                "marid.workspace": workspace_id,
                "marid.sandbox": sandbox_id,
                "marid.worker": self.worker_id,
                "marid.step": step.id,
                **(labels or {}),
            },
        )
        session = StepSession(
            runner=self.runner,
            spec=spec,
            step=step,
            endpoint=self.llm,
            http=self._http,
            token=llm_token,
            rpc_tools=self.rpc.allowed(step.tools),
            rpc_context=dict(rpc_context or {}),
            limits=self.limits,
            deadlines=self.deadlines,
            on_event=on_event,
            control=control,
        )
        return await session.run()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Supervisor:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
