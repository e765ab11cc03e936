"""The frames of the sandbox channel as the supervisor checks them (docs/sandbox-channel.md, version 1).

Everything a sandbox sends is untrusted. Each frame from the runtime is validated strictly (exact JSON types, no
coercion, bounded strings); unknown fields are ignored, as the protocol says. A frame of a known type that fails
validation is a protocol violation and ends the step; an unknown type is answered with ``error`` and skipped.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, field_validator

PROTOCOL = 1
MAX_LINE = 1024 * 1024
# tool_start args and tool_end results: the runtime truncates them to this many characters.
EVENT_TEXT_LIMIT = 8 * 1024
# Largest piece of an LLM answer per llm_response_chunk frame (bytes before encoding).
CHUNK_BYTES = 64 * 1024

Frame = dict[str, Any]
_Id = Annotated[str, Field(min_length=1, max_length=128)]
_Name = Annotated[str, Field(min_length=1, max_length=200)]
_Count = Annotated[int, Field(ge=0, le=10**12)]


class ProtocolError(Exception):
    """The runtime broke the protocol; the message says how, for the step's error."""


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class Hello(_In):
    type: Literal["hello"]
    runtime: Annotated[str, Field(max_length=200)]
    protocol: int
    pid: int


class Status(_In):
    type: Literal["status"]
    state: Literal["ready", "busy", "exiting"]


class Output(_In):
    type: Literal["output"]
    text: str


class Thinking(_In):
    type: Literal["thinking"]
    text: str


class ToolStart(_In):
    type: Literal["tool_start"]
    call_id: _Id
    tool: _Name
    args: Annotated[str, Field(max_length=EVENT_TEXT_LIMIT)]


class ToolEnd(_In):
    type: Literal["tool_end"]
    call_id: _Id
    tool: _Name
    ok: bool
    result: Annotated[str, Field(max_length=EVENT_TEXT_LIMIT)]
    duration_ms: _Count


class FileChanged(_In):
    type: Literal["file_changed"]
    path: Annotated[str, Field(min_length=1, max_length=4096)]
    change: Literal["created", "modified", "deleted"]
    size: _Count

    @field_validator("path")
    @classmethod
    def _relative(cls, path: str) -> str:
        # Only a display hint, but it reaches pages and logs: relative, no '..', no control characters.
        if path.startswith("/") or ".." in path.split("/") or any(ord(c) < 32 for c in path):
            raise ValueError("must be a plain path relative to the workspace")
        return path


class UsageFrame(_In):
    type: Literal["usage"]
    input_tokens: _Count
    output_tokens: _Count
    cache_read_tokens: _Count = 0
    cache_write_tokens: _Count = 0


class Log(_In):
    type: Literal["log"]
    level: Annotated[str, Field(max_length=20)]
    message: Annotated[str, Field(max_length=EVENT_TEXT_LIMIT)]


class LlmRequest(_In):
    type: Literal["llm_request"]
    id: _Id
    method: Annotated[str, Field(max_length=10)]
    path: Annotated[str, Field(max_length=2048)]
    headers: dict[str, Annotated[str, Field(max_length=4096)]] = Field(max_length=64)
    body: str
    more: bool = False


class LlmRequestBody(_In):
    type: Literal["llm_request_body"]
    id: _Id
    data: str
    more: bool


class LlmCancel(_In):
    type: Literal["llm_cancel"]
    id: _Id


class RpcRequest(_In):
    type: Literal["rpc_request"]
    id: _Id
    method: _Name
    params: dict[str, Any]


class Result(_In):
    type: Literal["result"]
    status: Literal["complete", "fail", "turn_limit", "timeout", "aborted"]
    outputs: dict[Annotated[str, Field(max_length=200)], str] = Field(max_length=256)
    summary: str | None = None
    error: str | None = None


class ErrorFrame(_In):
    type: Literal["error"]
    message: str
    about: str | None = None


RuntimeFrame = (
    Hello
    | Status
    | Output
    | Thinking
    | ToolStart
    | ToolEnd
    | FileChanged
    | UsageFrame
    | Log
    | LlmRequest
    | LlmRequestBody
    | LlmCancel
    | RpcRequest
    | Result
    | ErrorFrame
)
_ADAPTER: TypeAdapter[RuntimeFrame] = TypeAdapter(Annotated[RuntimeFrame, Field(discriminator="type")])
KNOWN_TYPES: frozenset[str] = frozenset(
    get_args(model.model_fields["type"].annotation)[0] for model in get_args(RuntimeFrame)
)


class UnknownFrame:
    """A frame of a type this supervisor does not know: answered with ``error``, otherwise ignored."""

    def __init__(self, type_: str) -> None:
        self.type = type_


def parse(line: bytes) -> RuntimeFrame | UnknownFrame:
    """The frame on one line (newline included or not); raises ProtocolError."""
    try:
        value = json.loads(line)
    except ValueError:
        raise ProtocolError(f"the runtime sent a line that is not JSON: {_preview(line)}") from None
    if not isinstance(value, dict):
        raise ProtocolError(f"the runtime sent JSON that is not an object: {_preview(line)}")
    if value.get("v") != PROTOCOL:
        raise ProtocolError(f'the runtime sent a frame without "v": {PROTOCOL}: {_preview(line)}')
    kind = value.get("type")
    if not isinstance(kind, str):
        raise ProtocolError(f"the runtime sent a frame without a type: {_preview(line)}")
    if kind not in KNOWN_TYPES:
        return UnknownFrame(kind[:64])
    try:
        return _ADAPTER.validate_python(value)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"][1:]) or "frame"
        raise ProtocolError(f"the runtime sent an invalid {kind!r} frame: {where}: {first['msg']}") from None


def _preview(line: bytes) -> str:
    text = line[:80].decode("utf-8", errors="replace").rstrip("\n")
    return repr(text + ("…" if len(line) > 80 else ""))


def frame(type_: str, **fields: Any) -> Frame:
    return {"v": PROTOCOL, "type": type_, **fields}


def encode(message: Frame) -> bytes:
    # "replace": text held as surrogates (an undecodable name) must not make a frame fail.
    return json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode(errors="replace") + b"\n"
