"""One step in one sandbox, from listening on its channel to removing it (the supervisor's inner loop).

A single loop consumes one inbox: frames and violations from the channel pump, commands from the caller's
``StepControl``, and time. Deadlines are checked between items, so a sandbox that says nothing, says too much
or says nonsense ends the step the same way: the reason becomes the result's error, and the ``finally`` kills
and removes the sandbox whatever happened (a caller's cancellation included).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from app.sandbox import files
from app.sandbox.channel import ChannelLimits, Closed, Connection, InboxItem, Listener, Violation
from app.sandbox.frames import (
    MAX_LINE,
    PROTOCOL,
    ErrorFrame,
    Hello,
    LlmCancel,
    LlmRequest,
    LlmRequestBody,
    Result,
    RpcRequest,
    RuntimeFrame,
    Status,
    UnknownFrame,
    UsageFrame,
    encode,
    frame,
)
from app.sandbox.llm_proxy import LlmEndpoint, PendingRequest, forward
from app.sandbox.rpc import RpcCall, RpcTool, answer
from app.sandbox.runner import OUTPUT_LOG, Runner, Sandbox, SandboxSpec
from app.sandbox.step import AgentStep, StepControl, StepEvent, StepResult, StepStatus, Usage

logger = logging.getLogger(__name__)

OnEvent = Callable[[StepEvent], Awaitable[None]]
# Frames of the runtime relayed to the caller as events (the rest is plumbing: LLM calls, RPCs, hello).
RELAYED = frozenset(
    {"output", "thinking", "tool_start", "tool_end", "file_changed", "usage", "status", "log", "result"}
)


@dataclass(frozen=True)
class Deadlines:
    # From the sandbox's start to its hello (a cold container, a slow import).
    hello_seconds: float = 30.0
    # A busy runtime repeats ``status busy`` every 10 s; silence this long means it hangs.
    idle_seconds: float = 60.0
    # Past the step's own timeout (which the runtime enforces), or after an abort: time to send the result.
    grace_seconds: float = 10.0
    # After the result: time to exit on ``shutdown`` before being killed.
    exit_seconds: float = 5.0
    # An RPC handler's time to answer.
    rpc_seconds: float = 60.0


@dataclass
class _Ended:
    status: StepStatus
    error: str | None = None
    result: Result | None = None


@dataclass
class _Command:
    kind: Literal["abort", "inject"]
    text: str


class _Timer:
    """An inbox item: a deadline passed."""


@dataclass
class StepSession:
    runner: Runner
    spec: SandboxSpec
    step: AgentStep
    endpoint: LlmEndpoint
    http: httpx.AsyncClient
    token: str
    rpc_tools: Mapping[str, RpcTool]
    rpc_context: Mapping[str, Any]
    limits: ChannelLimits
    deadlines: Deadlines
    on_event: OnEvent | None
    control: StepControl | None

    inbox: asyncio.Queue[InboxItem | _Command] = field(default_factory=asyncio.Queue)
    usage: Usage = Usage()
    tasks: set[asyncio.Task[None]] = field(default_factory=set)
    llm_tasks: dict[str, asyncio.Task[None]] = field(default_factory=dict)
    llm_pending: dict[str, PendingRequest] = field(default_factory=dict)
    rpc_pending: int = 0
    state: str = ""
    connection: Connection | None = None

    async def run(self) -> StepResult:
        started = time.monotonic()
        workdir = self.spec.workdir
        before = await asyncio.to_thread(files.snapshot, workdir)
        ended, exit_code = await self._run_sandbox()
        after = await asyncio.to_thread(files.snapshot, workdir)
        result = ended.result
        return StepResult(
            status=ended.status,
            outputs=dict(result.outputs) if result is not None else {},
            summary=result.summary if result is not None else None,
            error=ended.error,
            usage=self.usage,
            files_changed=files.changes(before, after),
            exit_code=exit_code,
            duration_seconds=time.monotonic() - started,
        )

    async def _run_sandbox(self) -> tuple[_Ended, int | None]:
        channel_dir = self.spec.channel_dir
        listener = Listener(channel_dir)
        channel_dir.mkdir(mode=0o700, parents=True, exist_ok=False)
        exit_code: int | None = None
        try:
            await listener.start()
            try:
                sandbox = await self.runner.start(self.spec)
            except Exception as error:
                logger.exception("sandbox %s did not start", self.spec.sandbox_id)
                with contextlib.suppress(Exception):  # whatever the runner made before it failed
                    await self.runner.destroy(self.spec.sandbox_id)
                return _Ended("error", f"the sandbox did not start: {error}"), None
            exited = asyncio.ensure_future(sandbox.wait())
            control = asyncio.ensure_future(self._relay_commands())
            try:
                ended = await self._converse(listener, exited)
                if ended.result is not None and self.connection is not None:
                    # A clean end: ask the runtime to exit, give it a moment, then kill anyway.
                    self.connection.write(frame("shutdown"))
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(asyncio.shield(exited), self.deadlines.exit_seconds)
            finally:
                control.cancel()
                # Shielded: a caller cancelled twice (a job timeout, then the worker stopping) must still not
                # leave the sandbox behind; the teardown then finishes on its own.
                exit_code = await asyncio.shield(self._teardown(sandbox, exited))
        finally:
            listener.stop_listening()
            shutil.rmtree(channel_dir, ignore_errors=True)
        return ended, exit_code

    async def _teardown(self, sandbox: Sandbox, exited: asyncio.Future[int]) -> int | None:
        """Stop what serves the sandbox, kill it, collect its exit status, remove it; never raises."""
        await self._stop_tasks()
        if self.connection is not None:
            await self.connection.close()
        try:
            await sandbox.kill()
        except Exception:
            logger.exception("killing sandbox %s failed", self.spec.sandbox_id)
        code: int | None = None
        try:
            code = await asyncio.wait_for(asyncio.shield(exited), 10)
        except Exception:
            logger.warning("sandbox %s: no exit status", self.spec.sandbox_id, exc_info=True)
            exited.cancel()
        try:
            await sandbox.remove()
        except Exception:
            logger.exception("removing sandbox %s failed", self.spec.sandbox_id)
        return code

    async def _relay_commands(self) -> None:
        if self.control is None:
            return
        while True:
            kind, text = await self.control.commands.get()
            self.inbox.put_nowait(_Command(kind, text))

    async def _stop_tasks(self) -> None:
        for task in self.tasks:
            task.cancel()
        if self.tasks:
            await asyncio.wait(self.tasks, timeout=5)

    def _spawn(self, work: Awaitable[None]) -> asyncio.Task[None]:
        async def run() -> None:
            await work

        task = asyncio.create_task(run())
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    # -- the conversation ------------------------------------------------------------------------------------

    async def _converse(self, listener: Listener, exited: asyncio.Future[int]) -> _Ended:
        hello_by = time.monotonic() + self.deadlines.hello_seconds
        injected: list[str] = []
        # Until the runtime connects: its exit, the hello deadline, or an abort end the step.
        while True:
            waiting: set[asyncio.Future[Any]] = {listener.connected, exited}
            commands = asyncio.ensure_future(self.inbox.get())
            done, _ = await asyncio.wait(
                waiting | {commands}, timeout=hello_by - time.monotonic(), return_when=asyncio.FIRST_COMPLETED
            )
            if commands in done:
                item = commands.result()
                if isinstance(item, _Command) and item.kind == "abort":
                    return _Ended("aborted", item.text)
                if isinstance(item, _Command):
                    injected.append(item.text)
                continue
            commands.cancel()
            if listener.connected.done():
                break
            if exited.done():
                said = _last_words(self.spec.channel_dir / OUTPUT_LOG)
                return _Ended(
                    "error",
                    f"the runtime exited (status {exited.result()}) before saying hello{': ' + said if said else ''}",
                )
            return _Ended("error", f"the sandbox did not say hello within {self.deadlines.hello_seconds:g} s")
        self.connection = connection = listener.connected.result()
        self._spawn(connection.pump(self.inbox.put_nowait, self.limits))

        first = await self._next(hello_by)
        while isinstance(first, _Command):
            if first.kind == "abort":
                return _Ended("aborted", first.text)
            injected.append(first.text)
            first = await self._next(hello_by)
        if not isinstance(first, Hello):
            return self._broken(first)
        if first.protocol != PROTOCOL:
            return _Ended("error", f"the runtime speaks channel protocol {first.protocol}, not {PROTOCOL}")

        start = frame("start", step=self.step.to_frame(), rpc_tools=[t.schema() for t in self.rpc_tools.values()])
        if len(encode(start)) > MAX_LINE:
            return _Ended("error", "the step is too large for one start frame (1 MiB)")
        connection.write(start)
        for text in injected:
            connection.write(frame("inject", text=text))
        return await self._main_loop(connection)

    async def _next(self, deadline: float) -> InboxItem | _Command | _Timer:
        try:
            return await asyncio.wait_for(self.inbox.get(), max(0.0, deadline - time.monotonic()))
        except TimeoutError:
            return _Timer()

    def _broken(self, item: object) -> _Ended:
        """Why the first item from the channel is not a hello."""
        if isinstance(item, Violation):
            return _Ended("error", item.reason)
        if isinstance(item, Closed):
            return _Ended("error", "the runtime closed the channel before saying hello")
        if isinstance(item, _Timer):
            return _Ended("error", f"the sandbox did not say hello within {self.deadlines.hello_seconds:g} s")
        kind = getattr(item, "type", type(item).__name__)
        return _Ended("error", f"the runtime's first frame was {kind!r}, not hello")

    async def _main_loop(self, connection: Connection) -> _Ended:
        d = self.deadlines
        now = time.monotonic()
        step_by = now + self.step.timeout_seconds + d.grace_seconds
        last_frame = now
        abort_by: float | None = None
        abort_reason = ""
        while True:
            deadline = min(step_by, last_frame + d.idle_seconds, abort_by or step_by)
            item = await self._next(deadline)
            now = time.monotonic()
            if isinstance(item, _Timer):
                if abort_by is not None and now >= abort_by:
                    return _Ended("aborted", f"{abort_reason} (the runtime did not stop within {d.grace_seconds:g} s)")
                if now >= step_by:
                    return _Ended("timeout", f"the step ran past its timeout of {self.step.timeout_seconds:g} s")
                return _Ended("error", f"the runtime was silent for {d.idle_seconds:g} s while busy")
            if isinstance(item, _Command):
                if item.kind == "abort" and abort_by is None:
                    abort_by, abort_reason = now + d.grace_seconds, item.text
                    connection.write(frame("abort", reason=item.text))
                elif item.kind == "inject":
                    connection.write(frame("inject", text=item.text))
                continue
            if isinstance(item, Violation):
                return _Ended("error", item.reason)
            if isinstance(item, Closed):
                return _Ended("error", "the runtime closed the channel without a result (it exited or crashed)")
            last_frame = now
            if isinstance(item, UnknownFrame):
                connection.write(frame("error", message=f"unknown frame type {item.type!r}", about=item.type))
                continue
            ended = await self._handle(connection, item)
            if ended is not None:
                return ended

    async def _handle(self, connection: Connection, item: RuntimeFrame) -> _Ended | None:
        if isinstance(item, Hello):
            return _Ended("error", "the runtime said hello twice")
        if isinstance(item, LlmRequest | LlmRequestBody | LlmCancel):
            return self._llm(connection, item)
        if isinstance(item, RpcRequest):
            return self._rpc(connection, item)
        if isinstance(item, UsageFrame):
            self.usage += Usage(item.input_tokens, item.output_tokens, item.cache_read_tokens, item.cache_write_tokens)
        if isinstance(item, Status):
            if item.state == self.state:  # the busy keepalive: not news
                return None
            self.state = item.state
        if item.type in RELAYED and self.on_event is not None:
            await self.on_event(StepEvent(item.type, item.model_dump(exclude={"type"})))
        if isinstance(item, ErrorFrame):
            logger.info("sandbox %s refused a frame: %s", self.spec.sandbox_id, item.message)
        if isinstance(item, Result):
            return _Ended(item.status, item.error, item)
        return None

    # -- LLM calls and RPCs ----------------------------------------------------------------------------------

    def _llm(self, connection: Connection, item: LlmRequest | LlmRequestBody | LlmCancel) -> _Ended | None:
        if isinstance(item, LlmCancel):
            task = self.llm_tasks.pop(item.id, None)
            if task is not None:
                task.cancel()
            self.llm_pending.pop(item.id, None)
            return None
        if isinstance(item, LlmRequest):
            if item.id in self.llm_tasks or item.id in self.llm_pending:
                return _Ended("error", f"the runtime reused the LLM request id {item.id!r}")
            if len(self.llm_tasks) + len(self.llm_pending) >= self.limits.max_pending_llm_requests:
                return _Ended("error", f"the runtime opened more than {self.limits.max_pending_llm_requests} LLM calls")
            pending = PendingRequest(item.id, item.method, item.path, dict(item.headers), [item.body], len(item.body))
            if item.more:
                self.llm_pending[item.id] = pending
                return None
        else:
            found = self.llm_pending.get(item.id)
            if found is None:
                return _Ended("error", f"the runtime sent a body for an unknown LLM request {item.id!r}")
            pending = found
            pending.parts.append(item.data)
            pending.size += len(item.data)
            if pending.size > self.limits.max_llm_request_bytes:
                return _Ended("error", f"an LLM request is over {self.limits.max_llm_request_bytes} bytes")
            if item.more:
                return None
            del self.llm_pending[item.id]
        request_id = pending.id

        async def run() -> None:
            try:
                await forward(self.http, self.endpoint, self.token, pending, connection.send)
            finally:
                self.llm_tasks.pop(request_id, None)

        self.llm_tasks[request_id] = self._spawn(run())
        return None

    def _rpc(self, connection: Connection, item: RpcRequest) -> _Ended | None:
        if self.rpc_pending >= self.limits.max_pending_rpcs:
            return _Ended("error", f"the runtime has more than {self.limits.max_pending_rpcs} RPCs pending")
        self.rpc_pending += 1
        call = RpcCall(
            method=item.method,
            params=item.params,
            workspace_id=self.spec.workspace_id,
            step_id=self.step.id,
            sandbox_id=self.spec.sandbox_id,
            context=self.rpc_context,
        )

        async def run() -> None:
            try:
                try:
                    result, error = await asyncio.wait_for(
                        answer(self.rpc_tools.get(item.method), call), self.deadlines.rpc_seconds
                    )
                except TimeoutError:
                    result, error = None, {"code": "timeout", "message": f"{item.method} took too long"}
                await connection.send(_rpc_response(item, result, error))
            finally:
                self.rpc_pending -= 1

        self._spawn(run())
        return None


def _rpc_response(item: RpcRequest, result: Any, error: dict[str, str] | None) -> dict[str, Any]:
    if error is not None:
        return frame("rpc_response", id=item.id, error=error)
    reply = frame("rpc_response", id=item.id, result=result)
    try:
        size = len(encode(reply))
    except (TypeError, ValueError):
        logger.error("RPC handler %s returned a value that is not JSON", item.method)
        return frame("rpc_response", id=item.id, error={"code": "internal", "message": f"{item.method} failed"})
    if size > MAX_LINE:
        return frame("rpc_response", id=item.id, error={"code": "too_large", "message": "the result is over 1 MiB"})
    return reply


def _last_words(path: Path, limit: int = 300) -> str:
    """The last line the sandbox printed (its own output, shown to the step's workspace), to say why it died."""
    try:
        with path.open("rb") as output:
            output.seek(max(0, output.seek(0, 2) - 4096))
            tail = output.read().decode("utf-8", "replace")
    except OSError:
        return ""
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    return lines[-1][:limit] if lines else ""
