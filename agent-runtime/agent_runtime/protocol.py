"""The sandbox channel's frames as the runtime sees them (docs/sandbox-channel.md, version 1).

A frame is one JSON object per line. The runtime keeps every frame it sends under the 1 MiB line limit by
construction: events carry small pieces, tool arguments and results are truncated, long LLM request bodies
are split into ``llm_request_body`` frames and ``complete`` refuses oversized outputs.
"""

from __future__ import annotations

import json
from typing import Any

PROTOCOL = 1
MAX_LINE = 1024 * 1024
# tool_start args and tool_end results are cut to this many characters on the channel (the model gets more).
EVENT_TEXT_LIMIT = 8 * 1024
# Characters of streamed text per output/thinking frame (a provider may send a huge piece at once).
TEXT_PIECE = 64 * 1024
# Characters of an LLM request body per frame: even if JSON-escaping grew every character sixfold, the
# line stays under MAX_LINE.
BODY_PIECE = 128 * 1024

# What a result's outputs may hold (the supervisor refuses more).
MAX_OUTPUTS = 256
MAX_OUTPUT_NAME = 200

Frame = dict[str, Any]


class FrameTooLarge(ValueError):
    pass


def frame(type_: str, **fields: Any) -> Frame:
    return {"v": PROTOCOL, "type": type_, **fields}


def encode(message: Frame) -> bytes:
    # "replace": a file name that is not UTF-8 (held as surrogates) shows with a replacement character instead
    # of failing the frame.
    line = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode(errors="replace") + b"\n"
    if len(line) > MAX_LINE:
        raise FrameTooLarge(f"a {message.get('type')!r} frame of {len(line)} bytes is over the channel's line limit")
    return line


def decode(line: bytes) -> Frame | None:
    """The frame on this line, or None when it is not a JSON object of this protocol version."""
    try:
        value = json.loads(line)
    except ValueError:
        return None
    if not isinstance(value, dict) or value.get("v") != PROTOCOL or not isinstance(value.get("type"), str):
        return None
    return value


def truncate(text: str, limit: int = EVENT_TEXT_LIMIT) -> str:
    """At most ``limit`` characters, the note of what was cut included (the supervisor checks the limit)."""
    if len(text) <= limit:
        return text
    note = f"… [{len(text)} characters in all]"
    return text[: limit - len(note)] + note


def outputs_problem(outputs: dict[str, str]) -> str | None:
    """Why these outputs cannot go in a result frame, or None."""
    if len(outputs) > MAX_OUTPUTS:
        return f"at most {MAX_OUTPUTS} outputs"
    if any(len(name) > MAX_OUTPUT_NAME for name in outputs):
        return f"output names are at most {MAX_OUTPUT_NAME} characters"
    return None
