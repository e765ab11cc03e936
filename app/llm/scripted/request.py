"""One view of a chat request, whichever protocol it came in, so that scripts match both the same way.

The OpenAI chat-completions body and the Anthropic messages body say the same things in different shapes
(system prompt in the messages or beside them, tool results as ``tool`` messages or as ``tool_result`` blocks
in a user message). :func:`parse_openai` and :func:`parse_anthropic` check the parts a real provider would
refuse (so a gateway bug shows up as the provider's 400, not as a silent success) and fold both into a
:class:`ChatRequest`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

Api = Literal["openai", "anthropic"]
Role = Literal["system", "user", "assistant", "tool"]
ToolChoice = Literal["auto", "none", "required"]

_OPENAI_ROLES = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}


class RequestError(ValueError):
    """The body is not a valid request of its protocol; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


@dataclass(frozen=True)
class ToolUse:
    """A tool call the assistant made earlier in the conversation; ``arguments`` is the JSON text."""

    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Message:
    role: Role
    text: str
    tool_calls: tuple[ToolUse, ...] = ()
    # For role "tool": the call this message answers.
    tool_call_id: str | None = None


@dataclass(frozen=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ChatRequest:
    """What a script sees of a request. ``body`` and ``headers`` keep the raw request for tests that check it."""

    protocol: Api
    model: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    tool_choice: ToolChoice = "auto"
    # The one tool the caller forces (OpenAI {"type": "function", ...}, Anthropic {"type": "tool", ...}).
    forced_tool: str | None = None
    # The JSON schema of a structured-output request (OpenAI response_format, Anthropic output_config.format).
    response_schema: Mapping[str, Any] | None = None
    stream: bool = False
    include_usage: bool = False
    max_tokens: int | None = None
    api_key: str | None = None
    body: Mapping[str, Any] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)

    @property
    def last_user_text(self) -> str:
        for message in reversed(self.messages):
            if message.role == "user":
                return message.text
        return ""

    @property
    def prompt_text(self) -> str:
        """Every system and user message, in order: where a step's instructions can be."""
        return "\n".join(m.text for m in self.messages if m.role in ("system", "user"))

    @property
    def trailing_tool_results(self) -> tuple[Message, ...]:
        """The tool results sent since the assistant's last message: what this turn answers."""
        results: list[Message] = []
        for message in reversed(self.messages):
            if message.role != "tool":
                break
            results.append(message)
        return tuple(reversed(results))

    @property
    def assistant_turns(self) -> int:
        """How many assistant messages the conversation already has (0 on the first call)."""
        return sum(1 for m in self.messages if m.role == "assistant")

    @property
    def called_tools(self) -> tuple[str, ...]:
        """Names of the tools the assistant called earlier in the conversation, in order."""
        return tuple(call.name for m in self.messages for call in m.tool_calls)

    def tool(self, name: str) -> ToolSpec | None:
        return next((t for t in self.tools if t.name == name), None)


def _text_of(content: object, where: str) -> str:
    """The text of a message content: a string, or a list of parts/blocks of which the text ones count."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = []
        for part in content:
            if not isinstance(part, dict) or not isinstance(part.get("type"), str):
                raise RequestError(f"{where}: each content part must be an object with a type", where)
            if part["type"] == "text":
                if not isinstance(part.get("text"), str):
                    raise RequestError(f"{where}: a text part needs a string 'text'", where)
                texts.append(part["text"])
        return "\n".join(texts)
    raise RequestError(f"{where}: content must be a string or a list of parts", where)


def _require_model(body: Mapping[str, Any]) -> str:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", "model")
    return model


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise RequestError(f"{where} must be an object", where)
    return value


def _schema_of_openai_format(value: object) -> Mapping[str, Any] | None:
    if value is None:
        return None
    response_format = _object(value, "response_format")
    kind = response_format.get("type")
    if kind == "text":
        return None
    if kind == "json_object":
        return {"type": "object"}
    if kind == "json_schema":
        spec = _object(response_format.get("json_schema"), "response_format.json_schema")
        if not isinstance(spec.get("name"), str):
            raise RequestError("response_format.json_schema.name is required", "response_format.json_schema.name")
        return _object(spec.get("schema", {}), "response_format.json_schema.schema")
    raise RequestError(f"response_format.type {kind!r} is not supported", "response_format.type")


def parse_openai(body: object, *, api_key: str | None, headers: Mapping[str, str]) -> ChatRequest:
    """A ``POST /v1/chat/completions`` body; raises :class:`RequestError` where OpenAI would answer 400."""
    body = _object(body, "body")
    model = _require_model(body)
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RequestError("messages must be a non-empty array", "messages")
    messages = []
    for i, raw in enumerate(raw_messages):
        where = f"messages[{i}]"
        raw = _object(raw, where)
        role = _OPENAI_ROLES.get(raw.get("role"))  # type: ignore[arg-type]
        if role is None:
            raise RequestError(f"{where}.role must be one of {sorted(_OPENAI_ROLES)}", f"{where}.role")
        calls = []
        for j, call in enumerate(raw.get("tool_calls") or []):
            call = _object(call, f"{where}.tool_calls[{j}]")
            function = _object(call.get("function"), f"{where}.tool_calls[{j}].function")
            if not isinstance(call.get("id"), str) or not isinstance(function.get("name"), str):
                raise RequestError(f"{where}.tool_calls[{j}] needs an id and a function name", f"{where}.tool_calls")
            calls.append(ToolUse(call["id"], function["name"], str(function.get("arguments") or "")))
        tool_call_id = raw.get("tool_call_id")
        if role == "tool" and not isinstance(tool_call_id, str):
            raise RequestError(f"{where}.tool_call_id is required for role 'tool'", f"{where}.tool_call_id")
        messages.append(
            Message(role, _text_of(raw.get("content"), f"{where}.content"), tuple(calls), tool_call_id)  # type: ignore[arg-type]
        )
    tools = []
    for i, raw_tool in enumerate(body.get("tools") or []):
        raw_tool = _object(raw_tool, f"tools[{i}]")
        function = _object(raw_tool.get("function"), f"tools[{i}].function")
        if raw_tool.get("type") != "function" or not isinstance(function.get("name"), str):
            raise RequestError(f"tools[{i}] must be a function with a name", f"tools[{i}]")
        tools.append(
            ToolSpec(function["name"], str(function.get("description") or ""), function.get("parameters") or {})
        )
    choice, forced = _openai_tool_choice(body.get("tool_choice"))
    stream_options = body.get("stream_options") or {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    return ChatRequest(
        protocol="openai",
        model=model,
        messages=tuple(messages),
        tools=tuple(tools),
        tool_choice=choice,
        forced_tool=forced,
        response_schema=_schema_of_openai_format(body.get("response_format")),
        stream=bool(body.get("stream")),
        include_usage=bool(isinstance(stream_options, dict) and stream_options.get("include_usage")),
        max_tokens=max_tokens if isinstance(max_tokens, int) else None,
        api_key=api_key,
        body=body,
        headers=headers,
    )


def _openai_tool_choice(value: object) -> tuple[ToolChoice, str | None]:
    if value is None or value == "auto":
        return "auto", None
    if value in ("none", "required"):
        return value, None
    if isinstance(value, dict) and isinstance(value.get("function"), dict) and value["function"].get("name"):
        return "required", str(value["function"]["name"])
    raise RequestError("tool_choice must be 'none', 'auto', 'required' or a named function", "tool_choice")


def _anthropic_system(value: object) -> str:
    if value is None:
        return ""
    return _text_of(value, "system")


def parse_anthropic(body: object, *, api_key: str | None, headers: Mapping[str, str]) -> ChatRequest:
    """A ``POST /v1/messages`` body; raises :class:`RequestError` where Anthropic would answer 400."""
    body = _object(body, "body")
    model = _require_model(body)
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise RequestError("max_tokens: Field required (a positive integer)", "max_tokens")
    raw_messages = body.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise RequestError("messages: at least one message is required", "messages")
    messages: list[Message] = []
    system = _anthropic_system(body.get("system"))
    if system:
        messages.append(Message("system", system))
    for i, raw in enumerate(raw_messages):
        messages.extend(_anthropic_message(_object(raw, f"messages.{i}"), f"messages.{i}"))
    tools = []
    for i, raw_tool in enumerate(body.get("tools") or []):
        raw_tool = _object(raw_tool, f"tools.{i}")
        if not isinstance(raw_tool.get("name"), str):
            raise RequestError(f"tools.{i}.name: Field required", f"tools.{i}.name")
        tools.append(
            ToolSpec(raw_tool["name"], str(raw_tool.get("description") or ""), raw_tool.get("input_schema") or {})
        )
    choice, forced = _anthropic_tool_choice(body.get("tool_choice"))
    return ChatRequest(
        protocol="anthropic",
        model=model,
        messages=tuple(messages),
        tools=tuple(tools),
        tool_choice=choice,
        forced_tool=forced,
        response_schema=_anthropic_schema(body),
        stream=bool(body.get("stream")),
        # Anthropic always reports usage in message_start and message_delta.
        include_usage=True,
        max_tokens=max_tokens,
        api_key=api_key,
        body=body,
        headers=headers,
    )


def _anthropic_message(raw: Mapping[str, Any], where: str) -> list[Message]:
    role = raw.get("role")
    if role not in ("user", "assistant"):
        raise RequestError(f"{where}.role: Input should be 'user' or 'assistant'", f"{where}.role")
    content = raw.get("content")
    if isinstance(content, str):
        return [Message(role, content)]
    if not isinstance(content, list):
        raise RequestError(f"{where}.content: a string or a list of content blocks", f"{where}.content")
    texts: list[str] = []
    calls: list[ToolUse] = []
    results: list[Message] = []
    for j, block in enumerate(content):
        block = _object(block, f"{where}.content.{j}")
        kind = block.get("type")
        if kind == "text":
            texts.append(str(block.get("text", "")))
        elif kind == "tool_use" and role == "assistant":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise RequestError(f"{where}.content.{j}: tool_use needs an id and a name", f"{where}.content.{j}")
            calls.append(ToolUse(block["id"], block["name"], json.dumps(block.get("input", {}))))
        elif kind == "tool_result" and role == "user":
            if not isinstance(block.get("tool_use_id"), str):
                raise RequestError(f"{where}.content.{j}.tool_use_id: Field required", f"{where}.content.{j}")
            text = _text_of(block.get("content"), f"{where}.content.{j}.content")
            results.append(Message("tool", text, tool_call_id=block["tool_use_id"]))
        elif not isinstance(kind, str):
            raise RequestError(f"{where}.content.{j}.type: Field required", f"{where}.content.{j}.type")
        # Other blocks (images, documents, thinking) carry no text a script matches on.
    # Anthropic puts tool results first in the user message; the text after them is a new user turn.
    messages = results
    if texts or calls or not results:
        messages = [*results, Message(role, "\n".join(texts), tuple(calls))]
    return messages


def _anthropic_tool_choice(value: object) -> tuple[ToolChoice, str | None]:
    if value is None:
        return "auto", None
    choice = _object(value, "tool_choice")
    kind = choice.get("type")
    if kind == "auto":
        return "auto", None
    if kind == "none":
        return "none", None
    if kind == "any":
        return "required", None
    if kind == "tool" and isinstance(choice.get("name"), str):
        return "required", choice["name"]
    raise RequestError("tool_choice.type must be auto, any, tool or none", "tool_choice")


def _anthropic_schema(body: Mapping[str, Any]) -> Mapping[str, Any] | None:
    # The current API nests the format in output_config; the structured-outputs beta had it at the top level.
    config = body.get("output_config")
    candidates: Sequence[object] = (
        config.get("format") if isinstance(config, dict) else None,
        body.get("output_format"),
    )
    for candidate in candidates:
        if isinstance(candidate, dict) and candidate.get("type") == "json_schema":
            return _object(candidate.get("schema", {}), "output_config.format.schema")
    return None
