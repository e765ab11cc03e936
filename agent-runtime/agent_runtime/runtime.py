"""The runtime's side of the channel: say hello, take commands, run one step at a time.

Commands are read by one loop that never waits on a step, so ``abort``, ``inject`` and the LLM and RPC answers
reach a running step at once. While a step runs, ``status busy`` is repeated every KEEPALIVE seconds: the
supervisor kills a busy sandbox that stays silent, and a long tool or LLM call is not silence.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
from pathlib import Path

from agent_runtime import __version__
from agent_runtime.channel import Channel, ChannelError
from agent_runtime.events import Events
from agent_runtime.outcome import Outcome
from agent_runtime.protocol import PROTOCOL, Frame, FrameTooLarge, frame
from agent_runtime.rpc import RpcClient
from agent_runtime.step import Step
from agent_runtime.tunnel import LlmTunnel
from agent_runtime.workspace import Workspace

KEEPALIVE = 10.0


class Execution:
    """One step: its own timeout, an abort that cancels whatever it is doing, injected text for the next turn."""

    def __init__(self, runtime: Runtime, step: Step) -> None:
        self.runtime = runtime
        self.step = step
        self.abort_reason: str | None = None
        # Shared with the agent loop, which takes what is here before each turn.
        self.injected: list[str] = []
        self._work: asyncio.Task[Outcome] | None = None

    def abort(self, reason: str) -> None:
        if self.abort_reason is None:
            self.abort_reason = reason or "aborted"
        if self._work is not None:
            self._work.cancel()

    def inject(self, text: str) -> None:
        self.injected.append(text)

    async def run(self) -> Outcome:
        self._work = asyncio.create_task(self._agent())
        if self.abort_reason is not None:  # aborted before it began
            self._work.cancel()
        try:
            async with asyncio.timeout(self.step.timeout_seconds):
                return await self._work
        except TimeoutError:
            return Outcome("timeout", error=f"the step ran past its timeout of {self.step.timeout_seconds:g} s")
        except asyncio.CancelledError:
            if self.abort_reason is None:
                raise
            return Outcome("aborted", error=self.abort_reason)
        except Exception as error:  # an LLM call that failed for good, a channel error
            return Outcome("fail", error=_describe(error))

    async def _agent(self) -> Outcome:
        if self.runtime.preloaded is not None:
            # Shielded: an abort now must not cancel the import that later steps wait for too.
            await asyncio.shield(self.runtime.preloaded)
        from agent_runtime.agent import AgentLoop
        from agent_runtime.llm import client
        from agent_runtime.structured import run_structured
        from agent_runtime.tools import Toolbox

        runtime = self.runtime
        async with client(runtime.tunnel) as llm:
            label = str(runtime.workspace.root)
            if self.step.output_schema is not None:
                return await run_structured(self.step, llm, runtime.events, label)
            toolbox = Toolbox(self.step, runtime.workspace, runtime.rpc)
            loop = AgentLoop(self.step, llm, toolbox, runtime.events, label, injected=self.injected)
            return await loop.run()


def _describe(error: BaseException) -> str:
    import openai

    if isinstance(error, openai.APIStatusError):
        return f"the LLM call failed ({error.status_code}): {error.message}"
    if isinstance(error, openai.APIError):
        # A connection error's message is only "Connection error."; what broke is its cause (from the tunnel).
        cause = f" ({error.__cause__})" if error.__cause__ is not None else ""
        return f"the LLM call failed: {error.message}{cause}"
    return f"{type(error).__name__}: {error}"


def _preload() -> None:
    """Import the loop, its tools and the SDK (a second or so of CPU) before a step needs them."""
    import agent_runtime.agent
    import agent_runtime.llm
    import agent_runtime.structured
    import agent_runtime.tools  # noqa: F401


class Runtime:
    def __init__(self, channel: Channel, workspace: Workspace) -> None:
        self.channel = channel
        self.workspace = workspace
        self.events = Events(channel)
        self.tunnel = LlmTunnel(channel)
        self.rpc = RpcClient(channel)
        self.execution: Execution | None = None
        self._step_task: asyncio.Task[None] | None = None
        self.preloaded: asyncio.Future[None] | None = None

    async def serve(self) -> int:
        """Until ``shutdown`` (0) or the channel closes (1)."""
        await self.channel.send(frame("hello", runtime=__version__, protocol=PROTOCOL, pid=os.getpid()))
        # In a thread, after hello: neither hello nor the busy keepalive waits for the SDK's import.
        self.preloaded = asyncio.ensure_future(asyncio.to_thread(_preload))
        code = 1
        try:
            async for message in self.channel.frames():
                if message is None:
                    await self.channel.send(frame("error", message="a line that is not a frame of protocol 1"))
                    continue
                if message["type"] == "shutdown":
                    code = 0
                    break
                await self._dispatch(message)
        except ChannelError as error:
            print(f"agent-runtime: {error}", file=sys.stderr)
        finally:
            await self._finish_step()
            with contextlib.suppress(ConnectionError, RuntimeError):
                await self.channel.send(frame("status", state="exiting"))
            await self.channel.close()
        return code

    async def _dispatch(self, message: Frame) -> None:
        kind = message["type"]
        if kind in ("llm_response_start", "llm_response_chunk", "llm_response_end"):
            self.tunnel.deliver(message)
        elif kind == "rpc_response":
            self.rpc.deliver(message)
        elif kind == "start":
            if self._step_task is not None and not self._step_task.done():
                await self.channel.send(frame("error", message="a step is already running", about="start"))
            else:
                self._step_task = asyncio.create_task(self._run_step(message))
        elif kind == "abort":
            if self.execution is not None:
                self.execution.abort(str(message.get("reason") or "aborted"))
        elif kind == "inject":
            if self.execution is not None and isinstance(message.get("text"), str):
                self.execution.inject(message["text"])
        elif kind == "error":
            print(f"agent-runtime: the supervisor refused a frame: {message.get('message')}", file=sys.stderr)
        else:
            await self.channel.send(frame("error", message=f"unknown frame type {kind!r}", about=kind))

    async def _run_step(self, message: Frame) -> None:
        await self.channel.send(frame("status", state="busy"))
        keepalive = asyncio.create_task(self._keepalive())
        try:
            try:
                step = Step.parse(message.get("step"), message.get("rpc_tools"))
            except ValueError as error:
                outcome = Outcome("fail", error=f"the start frame is invalid: {error}")
            else:
                self.execution = Execution(self, step)
                outcome = await self.execution.run()
        finally:
            keepalive.cancel()
            self.execution = None
        try:
            await self.channel.send(frame("result", **outcome.fields()))
        except FrameTooLarge:  # a structured answer too big for one line: still exactly one result
            too_large = Outcome("fail", error="the step's outputs are too large for the channel (1 MiB)")
            await self.channel.send(frame("result", **too_large.fields()))
        await self.channel.send(frame("status", state="ready"))

    async def _keepalive(self) -> None:
        while True:
            await asyncio.sleep(KEEPALIVE)
            await self.channel.send(frame("status", state="busy"))

    async def _finish_step(self) -> None:
        """Shutdown or a closed channel: abort a running step and let it report, briefly."""
        task = self._step_task
        if task is None or task.done():
            return
        if self.execution is not None:
            self.execution.abort("the runtime is shutting down")
        try:
            await asyncio.wait_for(task, 5)
        except (TimeoutError, asyncio.CancelledError, ConnectionError, RuntimeError):
            task.cancel()


def workspace_root() -> Path:
    return Path(os.environ.get("MARID_WORKSPACE") or "/workspace")
