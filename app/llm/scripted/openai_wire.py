"""The OpenAI chat-completions wire format: completions, stream chunks and error JSON.

Shapes follow the official ``openai`` SDK's types (``ChatCompletion``, ``ChatCompletionChunk``) and its stream
accumulator: the first fragment of a tool call carries ``index``, ``id``, ``type`` and the function name, later
fragments only ``index`` and argument text; the finish reason comes in a chunk of its own; with
``stream_options.include_usage`` every chunk has ``"usage": null`` and a last chunk with no choices carries the
usage; ``data: [DONE]`` ends the stream. Thinking goes in ``reasoning_content``, as vLLM and DeepSeek send it.
"""

from __future__ import annotations

import json
from typing import Any

from app.llm.scripted.answer import Answer, pieces
from app.llm.scripted.request import Api
from app.llm.scripted.wire import sse

_ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_error", None),
    404: ("invalid_request_error", "model_not_found"),
    429: ("requests", "rate_limit_exceeded"),
}
_FINGERPRINT = "fp_scripted"


def usage(answer: Answer) -> dict[str, Any]:
    prompt_details: dict[str, int] = {"cached_tokens": answer.cached_tokens, "audio_tokens": 0}
    if answer.cache_write_tokens:
        prompt_details["cache_write_tokens"] = answer.cache_write_tokens
    return {
        "prompt_tokens": answer.prompt_tokens,
        "completion_tokens": answer.completion_tokens,
        "total_tokens": answer.prompt_tokens + answer.completion_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {
            "reasoning_tokens": answer.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class OpenAIWire:
    api: Api = "openai"
    request_id_header = "x-request-id"

    def body(self, answer: Answer) -> bytes:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": answer.text if answer.text or not answer.tool_calls else None,
            "refusal": None,
            "annotations": [],
        }
        if answer.thinking:
            message["reasoning_content"] = answer.thinking
        if answer.tool_calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in answer.tool_calls
            ]
        completion = {
            "id": f"chatcmpl-{answer.id}",
            "object": "chat.completion",
            "created": answer.created,
            "model": answer.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": answer.finish_reason}],
            "usage": usage(answer),
            "service_tier": "default",
            "system_fingerprint": _FINGERPRINT,
        }
        return json.dumps(completion).encode()

    def frames(self, answer: Answer, *, include_usage: bool) -> list[bytes]:
        def chunk(delta: dict[str, Any] | None, finish_reason: str | None = None) -> bytes:
            data: dict[str, Any] = {
                "id": f"chatcmpl-{answer.id}",
                "object": "chat.completion.chunk",
                "created": answer.created,
                "model": answer.model,
                "service_tier": "default",
                "system_fingerprint": _FINGERPRINT,
                "choices": []
                if delta is None
                else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
            }
            if include_usage:
                data["usage"] = usage(answer) if delta is None else None
            return sse(data)

        first_content = "" if answer.text or not answer.tool_calls else None
        frames = [chunk({"role": "assistant", "content": first_content, "refusal": None})]
        if answer.thinking:
            frames += [chunk({"reasoning_content": p}) for p in pieces(answer.thinking, answer.chunk_size)]
        if answer.text:
            frames += [chunk({"content": p}) for p in pieces(answer.text, answer.chunk_size)]
        for index, call in enumerate(answer.tool_calls):
            head = {"index": index, "id": call.id, "type": "function", "function": {"name": call.name, "arguments": ""}}
            frames.append(chunk({"tool_calls": [head]}))
            for piece in pieces(call.arguments, answer.chunk_size):
                if piece:
                    frames.append(chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]}))
        frames.append(chunk({}, answer.finish_reason))
        if include_usage:
            frames.append(chunk(None))
        frames.append(sse("[DONE]"))
        return frames

    def garbage_frame(self) -> bytes:
        return b'data: {"id": "chatcmpl-garbage", "choices": [{"delta": {"content": "unterminated\n\n'

    def error_frame(self, message: str, error_type: str | None) -> bytes:
        return sse({"error": {"message": message, "type": error_type or "server_error", "param": None, "code": None}})

    def error_body(
        self,
        status: int,
        message: str,
        *,
        error_type: str | None = None,
        code: str | None = None,
        param: str | None = None,
    ) -> bytes:
        default_type, default_code = _ERROR_TYPES.get(
            status, ("server_error" if status >= 500 else "invalid_request_error", None)
        )
        error = {"message": message, "type": error_type or default_type, "param": param, "code": code or default_code}
        return json.dumps({"error": error}).encode()
