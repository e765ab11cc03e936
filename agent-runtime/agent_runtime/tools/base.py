"""What every tool is: an OpenAI function schema and an async ``run`` that never raises for a bad call.

A tool's failure (a missing file, a refused path, bad arguments) is a result the model reads and can act on,
with ``ok=False``; only the runtime's own bugs raise.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from agent_runtime.workspace import Change

# What the model gets back from one tool call, at most (the rest is cut with a note).
RESULT_LIMIT = 50_000

JsonObject = dict[str, Any]


@dataclass
class ToolResult:
    ok: bool
    text: str
    changes: list[Change] = field(default_factory=list)

    @classmethod
    def error(cls, message: str) -> ToolResult:
        return cls(False, f"Error: {message}")


class ToolError(Exception):
    """Raised inside a tool for a bad call; becomes an error result."""


class Tool(Protocol):
    name: str
    description: str
    parameters: JsonObject

    async def run(self, args: Mapping[str, Any]) -> ToolResult: ...


def schema(tool: Tool) -> JsonObject:
    """The tool as the OpenAI chat-completions API takes it."""
    return {
        "type": "function",
        "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters},
    }


def cap(text: str, limit: int = RESULT_LIMIT) -> str:
    if len(text) <= limit:
        return text
    return text[:limit] + f"\n… [cut: {len(text) - limit} more characters]"


# Argument helpers: models send strings for numbers, nulls for absent values; take what is meant, refuse the rest.


def text_arg(args: Mapping[str, Any], name: str, *, required: bool = True, default: str = "") -> str:
    value = args.get(name)
    if value is None:
        if required:
            raise ToolError(f"'{name}' is required")
        return default
    if not isinstance(value, str):
        raise ToolError(f"'{name}' must be a string")
    return value


def int_arg(args: Mapping[str, Any], name: str, default: int | None, *, low: int = 0, high: int = 10**9) -> int | None:
    value = args.get(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        raise ToolError(f"'{name}' must be a number")
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ToolError(f"'{name}' must be a number") from None
    return max(low, min(high, number))


def bool_arg(args: Mapping[str, Any], name: str) -> bool:
    value = args.get(name)
    if isinstance(value, str):
        return value.strip().lower() in ("true", "1", "yes")
    return bool(value)
