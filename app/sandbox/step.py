"""What the supervisor is asked to run and what it hands back: the step, its events, its result, its control."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

# What the runtime reports, plus "error": the sandbox broke (did not start, crashed, broke the protocol, went
# silent); ``StepResult.error`` says how. The pipeline engine may retry an "error" like any failure.
StepStatus = Literal["complete", "fail", "turn_limit", "timeout", "aborted", "error"]


@dataclass(frozen=True)
class OutputSchema:
    name: str
    schema: Mapping[str, Any]
    strict: bool = True


@dataclass(frozen=True)
class AgentStep:
    """One agent step, as the ``start`` frame carries it (docs/sandbox-channel.md)."""

    id: str
    model: str
    # Assembled by the platform from the persona; the runtime adds how to finish and the outputs.
    system_prompt: str
    input: str
    # Built-in tool names (read, write, edit, bash, grep, find, ls) and RPC tool names; complete and fail are
    # always offered.
    tools: Sequence[str] = ()
    max_turns: int = 30
    timeout_seconds: float = 600.0
    temperature: float | None = None
    max_output_tokens: int | None = None
    outputs: Sequence[str] = ()
    # Output name -> the values the pipeline routes on.
    routing: Mapping[str, Sequence[str]] = field(default_factory=dict)
    output_schema: OutputSchema | None = None

    def to_frame(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "id": self.id,
            "system_prompt": self.system_prompt,
            "input": self.input,
            "tools": list(self.tools),
            "model": self.model,
            "max_turns": self.max_turns,
            "timeout_seconds": self.timeout_seconds,
            "outputs": list(self.outputs),
            "routing": {k: list(v) for k, v in self.routing.items()},
        }
        if self.temperature is not None:
            data["temperature"] = self.temperature
        if self.max_output_tokens is not None:
            data["max_output_tokens"] = self.max_output_tokens
        if self.output_schema is not None:
            s = self.output_schema
            data["output_schema"] = {"name": s.name, "strict": s.strict, "schema": dict(s.schema)}
        return data


@dataclass(frozen=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cache_read_tokens + other.cache_read_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
        )


@dataclass(frozen=True)
class FileChange:
    path: str  # relative to the workdir, '/'-separated
    change: Literal["created", "modified", "deleted"]
    size: int


@dataclass(frozen=True)
class StepEvent:
    """A frame of the runtime, validated, for relaying (``type``: output, thinking, tool_start, tool_end,
    file_changed, usage, status, log, result; ``data``: its fields as in docs/sandbox-channel.md)."""

    type: str
    data: Mapping[str, Any]


@dataclass(frozen=True)
class StepResult:
    status: StepStatus
    outputs: Mapping[str, str] = field(default_factory=dict)
    summary: str | None = None
    error: str | None = None
    # Summed from the runtime's usage events: for display (the gateway meters and bills).
    usage: Usage = Usage()
    # From the supervisor's own comparison of the workdir before and after, not from the sandbox's word.
    files_changed: tuple[FileChange, ...] = ()
    exit_code: int | None = None
    duration_seconds: float = 0.0


class StepControl:
    """Handed to ``Supervisor.run_step`` by its caller, to abort the step or add to it while it runs.

    Use it from the event loop the step runs in (a job's cancel listener, a chat's message handler).
    """

    def __init__(self) -> None:
        self.commands: asyncio.Queue[tuple[Literal["abort", "inject"], str]] = asyncio.Queue()

    def abort(self, reason: str = "aborted") -> None:
        self.commands.put_nowait(("abort", reason))

    def inject(self, text: str) -> None:
        self.commands.put_nowait(("inject", text))
