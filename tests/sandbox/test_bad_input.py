"""Bad input from a sandbox: a runtime that crashes, prints garbage, floods the channel or never answers. Each
time the step fails with a clear reason, the sandbox is killed and removed, and the supervisor carries on."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from app.llm.scripted import Reply, Script, ScriptedServer, ToolCall
from app.sandbox.channel import ChannelLimits
from app.sandbox.rpc import RpcCall, RpcRegistry, RpcTool
from app.sandbox.runners.process import ProcessRunner
from app.sandbox.session import Deadlines
from app.sandbox.step import AgentStep, StepControl, StepResult
from app.sandbox.supervisor import Supervisor
from tests.processes import alive, entries, eventually, pid_in
from tests.sandbox.supervision import TOKEN, MakeSupervisor, Recorder, fake

STEP = AgentStep(id="step-1", model="coder", system_prompt="", input="Do it.", tools=["write"], timeout_seconds=30)
FAST = Deadlines(hello_seconds=10, idle_seconds=5, grace_seconds=1.5, exit_seconds=1)


async def run_fake(supervisor: Supervisor, workdir: Path, behaviour: str, **kw: Any) -> StepResult:
    return await supervisor.run_step(
        STEP, workspace_id="ws-1", workdir=workdir, llm_token=TOKEN, command=fake(behaviour), **kw
    )


async def assert_cleaned_up(process_runner: ProcessRunner, workdir: Path, channels_root: Path) -> None:
    """The fake's process is gone, the process_runner holds nothing, the channel folder is removed."""
    pid = pid_in(workdir / "fake.pid")
    assert pid is not None and not alive(pid)
    assert await process_runner.list_owned() == []
    assert entries(channels_root) == []


async def assert_carries_on(llm: ScriptedServer, supervisor: Supervisor, workdir: Path) -> None:
    """The same supervisor runs a good step right after."""
    llm.register(
        "coder",
        Script.sequence(Reply(tool_calls=[ToolCall(name="complete", arguments={"outputs": {}, "summary": "ok"})])),
    )
    result = await supervisor.run_step(STEP, workspace_id="ws-1", workdir=workdir, llm_token=TOKEN)
    assert result.status == "complete", result.error


CASES = [
    ("crash", "the runtime closed the channel without a result"),
    ("garbage", "the runtime sent a line that is not JSON: 'this is not json'"),
    ("huge-line", "the runtime sent a line longer than 1 MiB"),
    ("flood", "the runtime flooded the channel (over 500 frames a second)"),
    ("bad-field", "the runtime sent an invalid 'tool_end' frame: duration_ms: Input should be a valid integer"),
    ("escaping-path", "the runtime sent an invalid 'file_changed' frame: path"),
    ("hello-twice", "the runtime said hello twice"),
    ("silent-while-busy", "the runtime was silent for 5 s while busy"),
    ("exit-at-once", "the runtime exited (status 5) before saying hello"),
    ("silent-after-connecting", "the sandbox did not say hello within 3 s"),
    ("never-connects", "the sandbox did not say hello within 3 s"),
    ("no-hello", "the runtime's first frame was 'status', not hello"),
]


@pytest.mark.parametrize(("behaviour", "reason"), CASES, ids=[c[0] for c in CASES])
async def test_a_misbehaving_runtime_fails_its_step_and_is_removed(
    behaviour: str,
    reason: str,
    llm: ScriptedServer,
    make_supervisor: MakeSupervisor,
    process_runner: ProcessRunner,
    workdir: Path,
    channels_root: Path,
) -> None:
    hello = 3.0 if "hello" in reason else FAST.hello_seconds
    supervisor = make_supervisor(deadlines=Deadlines(**{**FAST.__dict__, "hello_seconds": hello}))
    recorder = Recorder()
    result = await run_fake(supervisor, workdir, behaviour, on_event=recorder)

    assert result.status == "error"
    assert result.error is not None and result.error.startswith(reason), result.error
    assert result.outputs == {}
    await assert_cleaned_up(process_runner, workdir, channels_root)
    await assert_carries_on(llm, supervisor, workdir)


async def test_too_many_pending_rpcs_fail_the_step(
    make_supervisor: MakeSupervisor, process_runner: ProcessRunner, workdir: Path, channels_root: Path
) -> None:
    async def slow(call: RpcCall) -> None:
        await asyncio.sleep(30)

    registry = RpcRegistry([RpcTool("slow", "Takes its time", {"type": "object"}, slow)])
    supervisor = make_supervisor(rpc=registry, deadlines=FAST, limits=ChannelLimits(max_pending_rpcs=4))
    step = AgentStep(id="s", model="coder", system_prompt="", input="", tools=["slow"], timeout_seconds=30)
    result = await supervisor.run_step(
        step, workspace_id="ws-1", workdir=workdir, llm_token=TOKEN, command=fake("rpc-flood")
    )
    assert (result.status, result.error) == ("error", "the runtime has more than 4 RPCs pending")
    await assert_cleaned_up(process_runner, workdir, channels_root)


async def test_more_bytes_than_allowed_fail_the_step(
    make_supervisor: MakeSupervisor, process_runner: ProcessRunner, workdir: Path, channels_root: Path
) -> None:
    supervisor = make_supervisor(deadlines=FAST, limits=ChannelLimits(max_bytes=50_000, frames_per_second=10**6))
    result = await run_fake(supervisor, workdir, "flood")
    assert (result.status, result.error) == ("error", "the runtime sent more than 50000 bytes in one step")
    await assert_cleaned_up(process_runner, workdir, channels_root)


async def test_a_runtime_that_ignores_abort_is_killed_after_the_grace(
    make_supervisor: MakeSupervisor, process_runner: ProcessRunner, workdir: Path, channels_root: Path
) -> None:
    supervisor = make_supervisor(deadlines=FAST)
    control = StepControl()

    async def abort_when_busy(event: Any) -> None:
        if event.type == "status":
            control.abort("the run was cancelled")

    started = asyncio.get_running_loop().time()
    result = await run_fake(supervisor, workdir, "ignores-abort", on_event=abort_when_busy, control=control)
    assert result.status == "aborted"
    assert result.error == "the run was cancelled (the runtime did not stop within 1.5 s)"
    assert asyncio.get_running_loop().time() - started < 10
    await assert_cleaned_up(process_runner, workdir, channels_root)


async def test_a_well_behaved_probe_gets_errors_not_a_kill(
    make_supervisor: MakeSupervisor, process_runner: ProcessRunner, workdir: Path, channels_root: Path
) -> None:
    """An unknown frame type is answered with error; an RPC outside the step's allow-list and an LLM path other
    than chat completions are refused without ending the step."""

    async def handler(call: RpcCall) -> str:
        return "never called"

    registry = RpcRegistry([RpcTool("board_list", "List the board", {"type": "object"}, handler)])
    supervisor = make_supervisor(rpc=registry, deadlines=FAST)
    step = AgentStep(id="s", model="coder", system_prompt="", input="", tools=["board_list", "read"])
    result = await supervisor.run_step(
        step, workspace_id="ws-1", workdir=workdir, llm_token=TOKEN, command=fake("polite")
    )
    assert result.status == "complete", result.error
    assert result.outputs == {"refused": "frobnicate", "rpc": "not_allowed", "models": "404", "tools": "board_list"}
    assert result.exit_code == 0
    await assert_cleaned_up(process_runner, workdir, channels_root)


async def test_a_runner_that_cannot_start_the_sandbox(
    make_supervisor: MakeSupervisor, workdir: Path, channels_root: Path
) -> None:
    supervisor = make_supervisor(deadlines=FAST)
    result = await supervisor.run_step(
        STEP, workspace_id="ws-1", workdir=workdir, llm_token=TOKEN, command=["/nonexistent/runtime"]
    )
    assert result.status == "error"
    assert (result.error or "").startswith("the sandbox did not start:")
    assert entries(channels_root) == []


async def test_the_callers_cancellation_kills_the_sandbox(
    make_supervisor: MakeSupervisor, process_runner: ProcessRunner, workdir: Path, channels_root: Path
) -> None:
    supervisor = make_supervisor(deadlines=Deadlines(idle_seconds=60))
    task = asyncio.create_task(run_fake(supervisor, workdir, "silent-while-busy"))
    await eventually(lambda: pid_in(workdir / "fake.pid") and entries(channels_root))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await assert_cleaned_up(process_runner, workdir, channels_root)


async def test_a_failing_event_relay_ends_the_step_and_propagates(
    make_supervisor: MakeSupervisor, process_runner: ProcessRunner, workdir: Path, channels_root: Path
) -> None:
    supervisor = make_supervisor(deadlines=FAST)

    async def broken_relay(event: Any) -> None:
        raise ConnectionError("Redis is down")

    with pytest.raises(ConnectionError, match="Redis is down"):
        await run_fake(supervisor, workdir, "silent-while-busy", on_event=broken_relay)
    await assert_cleaned_up(process_runner, workdir, channels_root)
