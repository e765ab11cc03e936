"""The Anthropic messages wire format: messages, stream events and error JSON.

Shapes follow the official ``anthropic`` SDK's types and its ``MessageStream`` accumulator: every event has an
``event:`` line (the SDK skips events without one) and a JSON ``data:`` line with the same ``type``. A stream is
``message_start``, then per content block ``content_block_start``, deltas (``thinking_delta`` then
``signature_delta``, ``text_delta``, ``input_json_delta``) and ``content_block_stop``, a ``ping`` after the first
block starts, then ``message_delta`` (stop reason, cumulative usage) and ``message_stop``.
"""

from __future__ import annotations

import json
from typing import Any

from app.llm.scripted.answer import Answer, AnswerToolCall, pieces
from app.llm.scripted.request import Api
from app.llm.scripted.wire import sse

STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    504: "timeout_error",
    529: "overloaded_error",
}
# Thinking blocks carry an opaque signature that clients send back unchanged; any stable text will do here.
_SIGNATURE = "c2NyaXB0ZWQtdGhpbmtpbmc="


def usage(answer: Answer, *, output_tokens: int | None = None) -> dict[str, Any]:
    cached = answer.cached_tokens + answer.cache_write_tokens
    return {
        "input_tokens": max(answer.prompt_tokens - cached, 0),
        "output_tokens": answer.completion_tokens if output_tokens is None else output_tokens,
        "cache_creation_input_tokens": answer.cache_write_tokens,
        "cache_read_input_tokens": answer.cached_tokens,
        "service_tier": "standard",
    }


def _input(call: AnswerToolCall) -> object:
    # A script may send arguments that are not JSON on purpose; they go out as they are.
    try:
        return json.loads(call.arguments) if call.arguments else {}
    except ValueError:
        return call.arguments


class AnthropicWire:
    api: Api = "anthropic"
    request_id_header = "request-id"

    def _message(self, answer: Answer, content: list[dict[str, Any]], *, final: bool) -> dict[str, Any]:
        return {
            "id": f"msg_{answer.id}",
            "type": "message",
            "role": "assistant",
            "model": answer.model,
            "content": content,
            "stop_reason": STOP_REASONS[answer.finish_reason] if final else None,
            "stop_sequence": None,
            "usage": usage(answer) if final else usage(answer, output_tokens=1),
        }

    def body(self, answer: Answer) -> bytes:
        content: list[dict[str, Any]] = []
        if answer.thinking:
            content.append({"type": "thinking", "thinking": answer.thinking, "signature": _SIGNATURE})
        if answer.text:
            content.append({"type": "text", "text": answer.text})
        content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": _input(c)} for c in answer.tool_calls]
        return json.dumps(self._message(answer, content, final=True)).encode()

    def frames(self, answer: Answer, *, include_usage: bool) -> list[bytes]:
        frames = [sse({"type": "message_start", "message": self._message(answer, [], final=False)}, "message_start")]
        blocks: list[tuple[dict[str, Any], list[dict[str, Any]]]] = []
        if answer.thinking:
            deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(answer.thinking, answer.chunk_size)]
            blocks.append(
                (
                    {"type": "thinking", "thinking": "", "signature": ""},
                    [*deltas, {"type": "signature_delta", "signature": _SIGNATURE}],
                )
            )
        if answer.text:
            blocks.append(
                (
                    {"type": "text", "text": ""},
                    [{"type": "text_delta", "text": p} for p in pieces(answer.text, answer.chunk_size)],
                )
            )
        for call in answer.tool_calls:
            start = {"type": "tool_use", "id": call.id, "name": call.name, "input": {}}
            blocks.append(
                (
                    start,
                    [
                        {"type": "input_json_delta", "partial_json": p}
                        for p in pieces(call.arguments, answer.chunk_size)
                    ],
                )
            )
        for index, (start, deltas) in enumerate(blocks):
            frames.append(
                sse({"type": "content_block_start", "index": index, "content_block": start}, "content_block_start")
            )
            if index == 0:
                frames.append(sse({"type": "ping"}, "ping"))
            for delta in deltas:
                frames.append(
                    sse({"type": "content_block_delta", "index": index, "delta": delta}, "content_block_delta")
                )
            frames.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        stop = {"stop_reason": STOP_REASONS[answer.finish_reason], "stop_sequence": None}
        frames.append(sse({"type": "message_delta", "delta": stop, "usage": usage(answer)}, "message_delta"))
        frames.append(sse({"type": "message_stop"}, "message_stop"))
        return frames

    def garbage_frame(self) -> bytes:
        return b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta": {\n\n'

    def error_frame(self, message: str, error_type: str | None) -> bytes:
        return sse({"type": "error", "error": {"type": error_type or "overloaded_error", "message": message}}, "error")

    def error_body(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> bytes:
        # Anthropic has no param field: its messages name the field (``messages.0.role: ...``).
        default_type = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
        return json.dumps({"type": "error", "error": {"type": error_type or default_type, "message": message}}).encode()
