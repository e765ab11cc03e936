"""Scripts: what the scripted server answers, as data (Python, JSON or YAML) or as code.

A :class:`Script` is an ordered list of :class:`Turn`. For each request the first turn whose :class:`Match`
holds and that has uses left answers, with a :class:`Reply` or a fault (:data:`Fault`). A turn answers once
unless it says ``times`` (``None``: forever), so ``Script.sequence(a, b)`` answers ``a`` then ``b``. Matching on
the conversation (``assistant_turns``, ``tool_result_for``) instead of on order keeps a script right when a
client retries.

Anything with ``respond(request) -> Reply | Fault`` (a :class:`Responder`) can stand in for a script; the demo
model is one.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, TypeAdapter, model_validator

from app.llm.scripted.request import Api, ChatRequest

FinishReason = Literal["stop", "length", "tool_calls", "content_filter"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Match(_Strict):
    """Conditions on a request; all that are given must hold. An empty match matches everything."""

    model: str | None = None
    protocol: Api | None = None
    api_key: str | None = None
    # The last user message contains this text.
    last_user_contains: str | None = None
    # Some system or user message contains this text.
    prompt_contains: str | None = None
    # One of the tool results sent since the assistant's last message answers this call id.
    tool_result_for: str | None = None
    # One of those tool results contains this text.
    tool_result_contains: str | None = None
    # The request offers tools (True) or none (False).
    has_tools: bool | None = None
    # The request offers a tool of this name.
    tool_offered: str | None = None
    # The request asks for structured output (a JSON schema).
    structured: bool | None = None
    stream: bool | None = None
    # The conversation already has this many assistant messages (0 on the first call).
    assistant_turns: int | None = None

    def matches(self, request: ChatRequest) -> bool:
        results = request.trailing_tool_results
        checks = (
            self.model is None or request.model == self.model,
            self.protocol is None or request.protocol == self.protocol,
            self.api_key is None or request.api_key == self.api_key,
            self.last_user_contains is None or self.last_user_contains in request.last_user_text,
            self.prompt_contains is None or self.prompt_contains in request.prompt_text,
            self.tool_result_for is None or any(r.tool_call_id == self.tool_result_for for r in results),
            self.tool_result_contains is None or any(self.tool_result_contains in r.text for r in results),
            self.has_tools is None or bool(request.tools) == self.has_tools,
            self.tool_offered is None or request.tool(self.tool_offered) is not None,
            self.structured is None or (request.response_schema is not None) == self.structured,
            self.stream is None or request.stream == self.stream,
            self.assistant_turns is None or request.assistant_turns == self.assistant_turns,
        )
        return all(checks)


class ToolCall(_Strict):
    name: str
    # A string is sent verbatim, so a script can send arguments that are not valid JSON.
    arguments: dict[str, Any] | str = Field(default_factory=dict)
    # None: a stable id derived from the request (``call_…`` for OpenAI, ``toolu_…`` for Anthropic).
    id: str | None = None


class Usage(_Strict):
    """Token counts to report; a count left at None is estimated (about four characters a token).

    ``prompt_tokens`` is the whole input, cached part included (OpenAI's meaning). Anthropic's ``input_tokens``
    is then ``prompt_tokens - cached_tokens - cache_write_tokens``, with ``cache_read_input_tokens`` =
    ``cached_tokens`` and ``cache_creation_input_tokens`` = ``cache_write_tokens``.
    """

    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int | None = None


class Reply(_Strict):
    """An answer. ``structured`` is sent as the JSON text of the message (structured output)."""

    kind: Literal["reply"] = "reply"
    text: str | None = None
    thinking: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    structured: dict[str, Any] | list[Any] | None = None
    # None: "tool_calls" when there are tool calls, else "stop". Anthropic gets the matching stop_reason
    # (end_turn, max_tokens, tool_use, refusal).
    finish_reason: FinishReason | None = None
    usage: Usage = Usage()
    # Streaming: characters per chunk (text, thinking and tool arguments) and seconds between chunks.
    chunk_size: int = Field(16, ge=1)
    chunk_delay: float = Field(0.0, ge=0)
    # Seconds before the answer starts (headers included): a slow provider.
    delay: float = Field(0.0, ge=0)

    @model_validator(mode="before")
    @classmethod
    def _text_shorthand(cls, value: object) -> object:
        # YAML scripts may write `reply: Hello` for `reply: {text: Hello}`.
        return {"text": value} if isinstance(value, str) else value

    @model_validator(mode="after")
    def _one_body(self) -> Reply:
        if self.structured is not None and (self.text is not None or self.tool_calls):
            raise ValueError("a reply with structured output has no text and no tool calls")
        return self


class HttpError(_Strict):
    """Answer with an error status in the protocol's error JSON (429 gets ``retry-after`` when given)."""

    kind: Literal["http_error"] = "http_error"
    status: int = Field(500, ge=400, le=599)
    message: str | None = None
    # Overrides the protocol's error type for the status (OpenAI error.type, Anthropic error.type).
    error_type: str | None = None
    retry_after: float | None = None
    # Sets the x-should-retry header both SDKs obey (None: no header, the SDK decides by status).
    should_retry: bool | None = None


class MalformedJson(_Strict):
    """A 200 whose body is not JSON; streamed, the first chunk is not JSON."""

    kind: Literal["malformed_json"] = "malformed_json"


class GarbageChunk(_Strict):
    """The stream of ``reply`` with a chunk that is not JSON after ``after_chunks`` chunks (not streamed: like
    MalformedJson)."""

    kind: Literal["garbage_chunk"] = "garbage_chunk"
    after_chunks: int = Field(2, ge=0)
    reply: Reply = Reply()


class CutStream(_Strict):
    """The stream of ``reply`` drops after ``after_chunks`` chunks (not streamed: halfway through the body)."""

    kind: Literal["cut_stream"] = "cut_stream"
    after_chunks: int = Field(2, ge=0)
    reply: Reply = Reply()


class StreamError(_Strict):
    """The stream of ``reply`` ends with an error event after ``after_chunks`` chunks (not streamed: a 500)."""

    kind: Literal["stream_error"] = "stream_error"
    after_chunks: int = Field(1, ge=0)
    message: str = "The scripted server failed mid-stream."
    error_type: str | None = None
    reply: Reply = Reply()


class Hang(_Strict):
    """Say nothing for ``seconds`` (None: until the client gives up), then answer as the script says.

    With ``after_chunks`` the stream of ``reply`` starts, then stalls after that many chunks. ``reply`` is
    what is sent once the wait is over (default: an empty text).
    """

    kind: Literal["hang"] = "hang"
    seconds: float | None = Field(None, ge=0)
    after_chunks: int | None = Field(None, ge=0)
    reply: Reply = Reply()


Fault = Annotated[
    HttpError | MalformedJson | GarbageChunk | CutStream | StreamError | Hang, Field(discriminator="kind")
]
Outcome = Reply | HttpError | MalformedJson | GarbageChunk | CutStream | StreamError | Hang
_OUTCOME: TypeAdapter[Outcome] = TypeAdapter(Annotated[Outcome, Field(discriminator="kind")])


class Turn(_Strict):
    match: Match = Match()
    reply: Reply | None = None
    fault: Fault | None = None
    # How many requests this turn answers; None: every one that matches.
    times: int | None = Field(1, ge=1)

    @model_validator(mode="after")
    def _reply_or_fault(self) -> Turn:
        if (self.reply is None) == (self.fault is None):
            raise ValueError("a turn has either a reply or a fault")
        return self

    @property
    def outcome(self) -> Outcome:
        outcome = self.reply if self.reply is not None else self.fault
        assert outcome is not None
        return outcome


class Responder(Protocol):
    """What the server asks for an answer: a :class:`Script`, the demo model, or your own object."""

    def respond(self, request: ChatRequest) -> Outcome: ...


class Script(BaseModel):
    """Turns answered in order of matching; it counts the uses of each turn (``reset`` forgets them)."""

    model_config = ConfigDict(extra="forbid")

    turns: list[Turn]
    _used: list[int] = PrivateAttr(default_factory=list)
    _lock: threading.Lock = PrivateAttr(default_factory=threading.Lock)

    @classmethod
    def sequence(cls, *outcomes: Outcome) -> Script:
        """Answer with each outcome once, in this order."""
        return cls(turns=[_turn(o, times=1) for o in outcomes])

    @classmethod
    def always(cls, outcome: Outcome) -> Script:
        """Answer every request with this outcome."""
        return cls(turns=[_turn(outcome, times=None)])

    def respond(self, request: ChatRequest) -> Outcome:
        with self._lock:
            if len(self._used) != len(self.turns):
                self._used = [0] * len(self.turns)
            for i, turn in enumerate(self.turns):
                if (turn.times is None or self._used[i] < turn.times) and turn.match.matches(request):
                    self._used[i] += 1
                    return turn.outcome
            used = sum(1 for i, t in enumerate(self.turns) if t.times is not None and self._used[i] >= t.times)
        return HttpError(
            status=400,
            error_type="invalid_request_error",
            message=f"scripted model {request.model!r}: no turn of its script answers this request "
            f"({len(self.turns)} turns, {used} used up)",
        )

    def reset(self) -> None:
        with self._lock:
            self._used = [0] * len(self.turns)


def _turn(outcome: Outcome, *, times: int | None) -> Turn:
    if isinstance(outcome, Reply):
        return Turn(reply=outcome, times=times)
    return Turn(fault=outcome, times=times)


def parse_outcome(data: object) -> Outcome:
    """A reply or fault from JSON data (``{"kind": "hang", ...}``; a string or no kind is a reply)."""
    if isinstance(data, str) or (isinstance(data, dict) and "kind" not in data):
        return Reply.model_validate(data)
    return _OUTCOME.validate_python(data)


class ScriptDocument(Script):
    """A script with where it goes: the model name it answers, or the API key whose requests it answers."""

    model: str | None = None
    api_key: str | None = None

    @model_validator(mode="after")
    def _has_target(self) -> ScriptDocument:
        if (self.model is None) == (self.api_key is None):
            raise ValueError("a script document names either a model or an api_key")
        return self


def load_script_file(path: str | Path) -> list[ScriptDocument]:
    """Scripts from a JSON or YAML file: one document, or ``{"scripts": [document, ...]}``."""
    path = Path(path)
    text = path.read_text(encoding="utf-8")
    data: object
    if path.suffix in (".yaml", ".yml"):
        # PyYAML is optional (JSON always works); imported by name so the server needs no stubs for it.
        data = import_module("yaml").safe_load(text)
    else:
        data = json.loads(text)
    documents: Sequence[object] = data["scripts"] if isinstance(data, dict) and "scripts" in data else [data]
    return [ScriptDocument.model_validate(d) for d in documents]
