"""OpenAI chat completions to Anthropic messages and back: requests, answers, stream events, stop reasons, usage.

The gateway's callers speak OpenAI's protocol only; a workspace's Anthropic provider is called with the official
``anthropic`` SDK, so requests are translated on the way in and answers on the way out:

* system and developer messages become ``system``; ``tool`` messages become ``tool_result`` blocks of a user
  message; an assistant's ``tool_calls`` become ``tool_use`` blocks; consecutive messages of one role merge
  (Anthropic alternates user and assistant);
* ``tools``, ``tool_choice`` (and ``parallel_tool_calls``), ``max_completion_tokens``/``max_tokens``, ``stop``,
  ``response_format`` (a JSON schema becomes ``output_config.format``); ``temperature`` and ``top_p`` are not
  sent (the current messages API and SDK have no sampling parameters: the model sets its own);
* answers: text, ``tool_use`` as ``tool_calls``, thinking as ``reasoning_content`` (as vLLM and DeepSeek send
  it), stop reasons (``end_turn`` → ``stop``, ``max_tokens`` → ``length``, ``tool_use`` → ``tool_calls``,
  ``refusal`` → ``content_filter``), usage (``prompt_tokens`` includes the cached parts, as OpenAI counts).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

from app.llm.wire import GatewayError, sse

DEFAULT_MAX_TOKENS = 4096
STOP_REASONS = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def _bad(message: str, param: str) -> GatewayError:
    return GatewayError(400, message, param=param)


def _text_of(content: Any, param: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, dict) and part.get("type") == "text" and isinstance(part.get("text"), str):
                parts.append(part["text"])
            else:
                raise _bad("Only text parts can go here for an Anthropic model.", param)
        return "\n".join(parts)
    if content is None:
        return ""
    raise _bad("content must be a string or a list of parts.", param)


def _image(part: dict[str, Any], param: str) -> dict[str, Any]:
    image = part.get("image_url")
    url = image.get("url") if isinstance(image, dict) else image
    if not isinstance(url, str) or not url:
        raise _bad("An image part needs image_url.url.", param)
    if url.startswith("data:"):
        header, _, data = url[5:].partition(",")
        media_type, _, encoding = header.partition(";")
        if encoding != "base64":
            raise _bad("A data: URL image must be base64.", param)
        try:
            base64.b64decode(data, validate=True)
        except ValueError:
            raise _bad("The image is not valid base64.", param) from None
        return {"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}
    return {"type": "image", "source": {"type": "url", "url": url}}


def _user_blocks(content: Any, param: str) -> list[dict[str, Any]]:
    if isinstance(content, str):
        return [{"type": "text", "text": content}] if content else []
    if not isinstance(content, list):
        raise _bad("content must be a string or a list of parts.", param)
    blocks: list[dict[str, Any]] = []
    for number, part in enumerate(content):
        where = f"{param}.{number}"
        if not isinstance(part, dict):
            raise _bad("A content part is an object.", where)
        if part.get("type") == "text" and isinstance(part.get("text"), str):
            block: dict[str, Any] = {"type": "text", "text": part["text"]}
            if isinstance(part.get("cache_control"), dict):
                block["cache_control"] = part["cache_control"]
            blocks.append(block)
        elif part.get("type") == "image_url":
            blocks.append(_image(part, where))
        else:
            raise _bad(f"Content parts of type {part.get('type')!r} cannot go to an Anthropic model.", where)
    return blocks


def _tool_use(call: Any, param: str) -> dict[str, Any]:
    function = call.get("function") if isinstance(call, dict) else None
    if not isinstance(function, dict) or not isinstance(function.get("name"), str) or not call.get("id"):
        raise _bad("A tool call needs an id and a function name.", param)
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        parsed = {"arguments": arguments}
    if not isinstance(parsed, dict):
        parsed = {"value": parsed}
    return {"type": "tool_use", "id": str(call["id"]), "name": function["name"], "input": parsed}


def _messages(messages: list[Any]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(system blocks, messages) for Anthropic from OpenAI's messages."""
    system: list[dict[str, Any]] = []
    out: list[dict[str, Any]] = []

    def add(role: str, blocks: list[dict[str, Any]]) -> None:
        if not blocks:
            return
        if out and out[-1]["role"] == role:
            out[-1]["content"].extend(blocks)
        else:
            out.append({"role": role, "content": blocks})

    for number, message in enumerate(messages):
        param = f"messages.{number}"
        if not isinstance(message, dict):
            raise _bad("A message is an object.", param)
        role = message.get("role")
        content = message.get("content")
        if role in ("system", "developer"):
            text = _text_of(content, f"{param}.content")
            if text:
                system.append({"type": "text", "text": text})
        elif role == "user":
            add("user", _user_blocks(content, f"{param}.content"))
        elif role == "assistant":
            blocks: list[dict[str, Any]] = []
            text = (
                _text_of(content, f"{param}.content")
                if not isinstance(content, list)
                else _text_of(
                    [part for part in content if isinstance(part, dict) and part.get("type") == "text"], param
                )
            )
            if text:
                blocks.append({"type": "text", "text": text})
            calls = message.get("tool_calls") or []
            if not isinstance(calls, list):
                raise _bad("tool_calls is a list.", f"{param}.tool_calls")
            blocks += [_tool_use(call, f"{param}.tool_calls.{i}") for i, call in enumerate(calls)]
            add("assistant", blocks)
        elif role == "tool":
            call_id = message.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise _bad("A tool message needs tool_call_id.", f"{param}.tool_call_id")
            result = _text_of(content, f"{param}.content")
            add("user", [{"type": "tool_result", "tool_use_id": call_id, "content": result}])
        else:
            raise _bad(f"Messages of role {role!r} cannot go to an Anthropic model.", f"{param}.role")
    return system, out


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise _bad("tools is a list.", "tools")
    out = []
    for number, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _bad("A tool is {type: function, function: {name, parameters}}.", f"tools.{number}")
        schema = function.get("parameters") or {"type": "object", "properties": {}}
        entry: dict[str, Any] = {"name": function["name"], "input_schema": schema}
        if isinstance(function.get("description"), str):
            entry["description"] = function["description"]
        out.append(entry)
    return out


def _tool_choice(value: Any, parallel: Any) -> dict[str, Any] | None:
    choice: dict[str, Any]
    if value is None or value == "auto":
        choice = {"type": "auto"}
    elif value == "none":
        return {"type": "none"}
    elif value == "required":
        choice = {"type": "any"}
    elif isinstance(value, dict) and isinstance(value.get("function"), dict) and value["function"].get("name"):
        choice = {"type": "tool", "name": str(value["function"]["name"])}
    else:
        raise _bad("tool_choice is none, auto, required or a named function.", "tool_choice")
    if parallel is False:
        choice["disable_parallel_tool_use"] = True
    return choice


def to_anthropic(body: dict[str, Any], model: str) -> dict[str, Any]:
    """The keyword arguments of ``messages.create`` for an OpenAI chat-completions body (raises GatewayError)."""
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise _bad("messages must be a non-empty list.", "messages")
    system, converted = _messages(messages)
    if (body.get("n") or 1) != 1:
        raise _bad("An Anthropic model gives one choice per call (n=1).", "n")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or DEFAULT_MAX_TOKENS
    if not isinstance(max_tokens, int) or max_tokens < 1:
        raise _bad("max_completion_tokens is a positive number.", "max_completion_tokens")
    arguments: dict[str, Any] = {"model": model, "messages": converted, "max_tokens": max_tokens}
    response_format = body.get("response_format")
    if isinstance(response_format, dict) and response_format.get("type") == "json_schema":
        spec = response_format.get("json_schema")
        schema = spec.get("schema") if isinstance(spec, dict) else None
        if not isinstance(schema, dict):
            raise _bad("response_format.json_schema.schema is a JSON schema.", "response_format")
        arguments["output_config"] = {"format": {"type": "json_schema", "schema": schema}}
    elif isinstance(response_format, dict) and response_format.get("type") == "json_object":
        system.append({"type": "text", "text": "Answer with a single JSON object and nothing else."})
    if system:
        arguments["system"] = system
    if body.get("tools"):
        arguments["tools"] = _tools(body["tools"])
        choice = _tool_choice(body.get("tool_choice"), body.get("parallel_tool_calls"))
        if choice is not None:
            arguments["tool_choice"] = choice
    stop = body.get("stop")
    if isinstance(stop, str):
        arguments["stop_sequences"] = [stop]
    elif isinstance(stop, list) and all(isinstance(item, str) for item in stop):
        arguments["stop_sequences"] = stop
    if isinstance(body.get("user"), str):
        arguments["metadata"] = {"user_id": body["user"][:256]}
    return arguments


def openai_usage(input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> dict[str, Any]:
    prompt = input_tokens + cache_read + cache_write
    return {
        "prompt_tokens": prompt,
        "completion_tokens": output_tokens,
        "total_tokens": prompt + output_tokens,
        "prompt_tokens_details": {"cached_tokens": cache_read, "cache_write_tokens": cache_write},
    }


def _usage_numbers(usage: Any) -> tuple[int, int, int, int]:
    def number(name: str) -> int:
        value = getattr(usage, name, None)
        return value if isinstance(value, int) else 0

    return (
        number("input_tokens"),
        number("output_tokens"),
        number("cache_read_input_tokens"),
        number("cache_creation_input_tokens"),
    )


def completion_from(message: Any, model: str) -> dict[str, Any]:
    """An Anthropic ``Message`` as OpenAI's ``chat.completion``."""
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    for block in message.content:
        kind = getattr(block, "type", None)
        if kind == "text":
            texts.append(block.text)
        elif kind == "thinking":
            thinking.append(block.thinking)
        elif kind == "tool_use":
            arguments = json.dumps(block.input) if not isinstance(block.input, str) else block.input
            calls.append({"id": block.id, "type": "function", "function": {"name": block.name, "arguments": arguments}})
    reply: dict[str, Any] = {"role": "assistant", "content": "".join(texts) if texts or not calls else None}
    if thinking:
        reply["reasoning_content"] = "".join(thinking)
    if calls:
        reply["tool_calls"] = calls
    return {
        "id": f"chatcmpl-{message.id}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": reply,
                "logprobs": None,
                "finish_reason": STOP_REASONS.get(message.stop_reason or "", "stop"),
            }
        ],
        "usage": openai_usage(*_usage_numbers(message.usage)),
    }


class StreamTranslator:
    """Anthropic stream events in, OpenAI ``chat.completion.chunk`` events out (as SSE bytes)."""

    def __init__(self, model: str, *, include_usage: bool) -> None:
        self.model = model
        self.include_usage = include_usage
        self.id = "chatcmpl-anthropic"
        self.created = int(time.time())
        # Anthropic's content block index -> the OpenAI tool call index (tool calls are numbered from 0).
        self.tool_index: dict[int, int] = {}
        self.usage = (0, 0, 0, 0)
        self.finish_reason: str | None = None

    def _chunk(self, delta: dict[str, Any] | None, finish_reason: str | None = None) -> bytes:
        data: dict[str, Any] = {
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.created,
            "model": self.model,
            "choices": [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }
        if self.include_usage:
            data["usage"] = openai_usage(*self.usage) if delta is None else None
        return sse(data)

    def feed(self, event: Any) -> list[bytes]:
        kind = getattr(event, "type", None)
        if kind == "message_start":
            self.id = f"chatcmpl-{event.message.id}"
            self.usage = _usage_numbers(event.message.usage)
            return [self._chunk({"role": "assistant", "content": ""})]
        if kind == "content_block_start":
            block = event.content_block
            if getattr(block, "type", None) == "tool_use":
                index = len(self.tool_index)
                self.tool_index[event.index] = index
                head = {
                    "index": index,
                    "id": block.id,
                    "type": "function",
                    "function": {"name": block.name, "arguments": ""},
                }
                return [self._chunk({"tool_calls": [head]})]
            return []
        if kind == "content_block_delta":
            delta = event.delta
            delta_kind = getattr(delta, "type", None)
            if delta_kind == "text_delta":
                return [self._chunk({"content": delta.text})]
            if delta_kind == "thinking_delta":
                return [self._chunk({"reasoning_content": delta.thinking})]
            if delta_kind == "input_json_delta" and event.index in self.tool_index:
                part = {"index": self.tool_index[event.index], "function": {"arguments": delta.partial_json}}
                return [self._chunk({"tool_calls": [part]})]
            return []
        if kind == "message_delta":
            stop = getattr(event.delta, "stop_reason", None)
            self.finish_reason = STOP_REASONS.get(stop or "", "stop")
            numbers = _usage_numbers(event.usage)
            # The final usage is cumulative; fields it leaves out keep what message_start said.
            self.usage = tuple(new or old for new, old in zip(numbers, self.usage, strict=True))  # type: ignore[assignment]
            return []
        if kind == "message_stop":
            frames = [self._chunk({}, self.finish_reason or "stop")]
            if self.include_usage:
                frames.append(self._chunk(None))
            return frames
        return []
