"""The bash tool: one command in the workspace (or a folder of it), with a timeout and an output cap.

The command runs in its own session so that a timeout, an abort or its end kills everything it started
(background jobs included: they would otherwise hold the output pipe open). Which files it changed comes from
comparing workspace snapshots before and after.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
from collections.abc import Mapping
from typing import Any

from agent_runtime.tools.base import JsonObject, ToolError, ToolResult, int_arg, text_arg
from agent_runtime.workspace import PathRefused, Workspace

DEFAULT_TIMEOUT = 120
MAX_TIMEOUT = 600
# The model sees the first HEAD and the last TAIL characters of the output.
OUTPUT_HEAD = 20_000
OUTPUT_TAIL = 10_000


class _Output:
    """Keeps the head and the tail of a stream of any length."""

    def __init__(self) -> None:
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def add(self, data: bytes) -> None:
        self.total += len(data)
        room = OUTPUT_HEAD - len(self.head)
        if room > 0:
            self.head += data[:room]
            data = data[room:]
        if data:
            self.tail += data
            del self.tail[:-OUTPUT_TAIL]

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        if not self.tail:
            return head
        skipped = self.total - len(self.head) - len(self.tail)
        middle = f"\n… [{skipped} bytes of output cut] …\n" if skipped else ""
        return head + middle + self.tail.decode("utf-8", errors="replace")


def _kill_group(pid: int) -> None:
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


class Bash:
    name = "bash"
    description = (
        f"Run a bash command in the workspace (or in workdir, a folder of it). Output (stdout and stderr) is cut "
        f"to its first {OUTPUT_HEAD} and last {OUTPUT_TAIL} characters. Default timeout {DEFAULT_TIMEOUT} s, at "
        f"most {MAX_TIMEOUT}. Background processes end with the command. There is no network."
    )
    parameters: JsonObject = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The command line"},
            "timeout": {"type": "integer", "description": f"Seconds (default {DEFAULT_TIMEOUT})"},
            "workdir": {"type": "string", "description": "Folder to run in, relative to the workspace"},
        },
        "required": ["command"],
    }

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.shell = shutil.which("bash") or "/bin/sh"

    async def run(self, args: Mapping[str, Any]) -> ToolResult:
        try:
            command = text_arg(args, "command")
            timeout = int_arg(args, "timeout", DEFAULT_TIMEOUT, low=1, high=MAX_TIMEOUT) or DEFAULT_TIMEOUT
            workdir = self.workspace.resolve(text_arg(args, "workdir", required=False, default=".") or ".")
        except (ToolError, PathRefused) as error:
            return ToolResult.error(str(error))
        if not workdir.is_dir():
            return ToolResult.error(f"workdir {args.get('workdir')}: not a folder")
        before = await asyncio.to_thread(self.workspace.snapshot)
        env = {k: v for k, v in os.environ.items() if not k.startswith("MARID_")}
        env["PWD"] = str(workdir)
        process = await asyncio.create_subprocess_exec(
            self.shell,
            "-c",
            command,
            cwd=workdir,
            env=env,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        output = _Output()
        timed_out = False
        try:
            async with asyncio.timeout(timeout):
                await self._drain(process, output)
        except TimeoutError:
            timed_out = True
        finally:
            # Runs on timeout, abort (cancellation) and normal ends alike: nothing of the command outlives it.
            _kill_group(process.pid)
            if process.returncode is None:
                await process.wait()
        after = await asyncio.to_thread(self.workspace.snapshot)
        changes = after.changes_since(before)
        text = output.text()
        if text and not text.endswith("\n"):
            text += "\n"
        if timed_out:
            return ToolResult(False, f"{text}[timed out after {timeout} s; the command was killed]", changes)
        code = process.returncode
        return ToolResult(code == 0, f"{text}[exit code {code}]", changes)

    @staticmethod
    async def _drain(process: asyncio.subprocess.Process, output: _Output) -> None:
        assert process.stdout is not None
        reading = asyncio.ensure_future(_read_all(process.stdout, output))
        try:
            # Not process.wait(): asyncio's also waits for the pipe to close, which a background job holds open.
            while process.returncode is None and not reading.done():
                await asyncio.wait({reading}, timeout=0.05)
            if process.returncode is None:  # the output closed first; the command may still be running
                await process.wait()
            # The command is done; a background job may still hold the pipe: give it a moment, then stop reading.
            await asyncio.wait({reading}, timeout=0.5)
        finally:
            reading.cancel()


async def _read_all(stream: asyncio.StreamReader, output: _Output) -> None:
    while chunk := await stream.read(65536):
        output.add(chunk)
