"""The runtime over ``MARID_CHANNEL=stdio``, driven frame by frame by the test (playing the supervisor): the
handshake, a malformed start, unknown frames, an LLM endpoint that cannot be reached, shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest


class Driver:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def send(self, type_: str, **fields: Any) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(json.dumps({"v": 1, "type": type_, **fields}).encode() + b"\n")
        await self.process.stdin.drain()

    async def read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), 20)
        assert line, "the runtime closed stdout"
        frame: dict[str, Any] = json.loads(line)
        assert frame["v"] == 1
        return frame

    async def until(self, type_: str) -> dict[str, Any]:
        while (frame := await self.read())["type"] != type_:
            pass
        return frame


@pytest.fixture
async def runtime(tmp_path: Path) -> AsyncIterator[Driver]:
    env = {"PATH": os.environ["PATH"], "MARID_CHANNEL": "stdio", "MARID_WORKSPACE": str(tmp_path)}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agent_runtime",
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
    )
    yield Driver(process)
    if process.returncode is None:
        process.kill()
        await process.wait()


STEP = {"id": "s1", "model": "m", "max_turns": 2, "timeout_seconds": 30, "tools": ["read"]}


async def test_hello_then_shutdown_exits_zero(runtime: Driver) -> None:
    hello = await runtime.read()
    assert hello["type"] == "hello" and hello["protocol"] == 1 and hello["pid"] == runtime.process.pid
    await runtime.send("shutdown")
    assert await runtime.read() == {"v": 1, "type": "status", "state": "exiting"}
    assert await asyncio.wait_for(runtime.process.wait(), 10) == 0


async def test_a_malformed_start_fails_its_step_and_unknown_frames_are_answered(runtime: Driver) -> None:
    await runtime.until("hello")
    await runtime.send("frobnicate")
    assert await runtime.read() == {
        "v": 1,
        "type": "error",
        "message": "unknown frame type 'frobnicate'",
        "about": "frobnicate",
    }
    assert runtime.process.stdin is not None
    runtime.process.stdin.write(b"not json at all\n")
    assert (await runtime.read())["type"] == "error"

    await runtime.send("start", step={**STEP, "max_turns": "many"})
    assert await runtime.read() == {"v": 1, "type": "status", "state": "busy"}
    result = await runtime.read()
    assert result["type"] == "result" and result["status"] == "fail"
    assert result["error"] == "the start frame is invalid: step.max_turns must be an integer"
    assert (await runtime.read())["state"] == "ready"


async def test_an_unreachable_llm_endpoint_fails_the_step_after_the_sdks_retries(runtime: Driver) -> None:
    await runtime.until("hello")
    await runtime.send("start", step=STEP, rpc_tools=[])
    requests = []
    while (frame := await runtime.read())["type"] != "result":
        if frame["type"] == "llm_request":
            requests.append(frame)
            await runtime.send("llm_response_end", id=frame["id"], error="connection refused")
    assert len(requests) == 3  # the first try and the SDK's two retries
    first = requests[0]
    assert (first["method"], first["path"]) == ("POST", "/v1/chat/completions")
    assert "authorization" not in first["headers"] and first["more"] is False
    body = json.loads(first["body"])
    assert body["model"] == "m" and body["stream"] is True
    assert [t["function"]["name"] for t in body["tools"]] == ["read", "complete", "fail"]
    assert frame["status"] == "fail" and "Connection error" in frame["error"]


async def test_shutdown_while_busy_aborts_the_step_first(runtime: Driver) -> None:
    await runtime.until("hello")
    await runtime.send("start", step=STEP)
    await runtime.until("llm_request")  # the step now waits for its LLM answer
    await runtime.send("shutdown")
    cancel = await runtime.until("llm_cancel")
    assert cancel["id"].startswith("llm-")
    result = await runtime.until("result")
    assert (result["status"], result["error"]) == ("aborted", "the runtime is shutting down")
    assert (await runtime.until("status"))["state"] == "ready"
    assert (await runtime.until("status"))["state"] == "exiting"
    assert await asyncio.wait_for(runtime.process.wait(), 10) == 0
