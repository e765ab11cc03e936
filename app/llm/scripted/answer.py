"""A reply made concrete for one request: ids, argument text, finish reason, token counts, stream pieces.

Both wire formats render the same :class:`Answer`, so the OpenAI and the Anthropic endpoints tell the same
story about a reply (same text, same calls, same usage).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

from app.llm.scripted.request import ChatRequest
from app.llm.scripted.script import FinishReason, Reply


def estimate_tokens(text: str) -> int:
    """About four characters a token: good enough for usage numbers that tests and the UI can see."""
    return math.ceil(len(text) / 4) if text else 0


def pieces(text: str, size: int) -> list[str]:
    """``text`` cut into stream chunks of ``size`` characters (at least one piece, maybe empty)."""
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


@dataclass(frozen=True)
class AnswerToolCall:
    id: str
    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    id: str
    model: str
    created: int
    thinking: str
    text: str
    tool_calls: tuple[AnswerToolCall, ...]
    finish_reason: FinishReason
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    reasoning_tokens: int
    chunk_size: int
    chunk_delay: float
    delay: float


def request_digest(request: ChatRequest) -> str:
    """A stable digest of the conversation: the same request gets the same ids (a retry included)."""
    canonical = json.dumps(
        [request.model, [m.role + ":" + m.text for m in request.messages], [t.name for t in request.tools]],
        sort_keys=True,
    )
    return hashlib.sha256(canonical.encode()).hexdigest()


def make_answer(reply: Reply, request: ChatRequest, *, created: int) -> Answer:
    digest = request_digest(request)
    call_prefix = "toolu_" if request.protocol == "anthropic" else "call_"
    calls = tuple(
        AnswerToolCall(
            id=call.id or f"{call_prefix}{digest[:20]}{i:02d}",
            name=call.name,
            arguments=call.arguments if isinstance(call.arguments, str) else json.dumps(call.arguments),
        )
        for i, call in enumerate(reply.tool_calls)
    )
    text = json.dumps(reply.structured) if reply.structured is not None else (reply.text or "")
    thinking = reply.thinking or ""
    usage = reply.usage
    reasoning = usage.reasoning_tokens if usage.reasoning_tokens is not None else estimate_tokens(thinking)
    completion = usage.completion_tokens
    if completion is None:
        completion = reasoning + estimate_tokens(text) + sum(estimate_tokens(c.name + c.arguments) for c in calls)
    prompt = usage.prompt_tokens
    if prompt is None:
        prompt = _estimate_prompt(request) + usage.cached_tokens + usage.cache_write_tokens
    return Answer(
        id=digest[:24],
        model=request.model,
        created=created,
        thinking=thinking,
        text=text,
        tool_calls=calls,
        finish_reason=reply.finish_reason or ("tool_calls" if calls else "stop"),
        prompt_tokens=prompt,
        completion_tokens=completion,
        cached_tokens=usage.cached_tokens,
        cache_write_tokens=usage.cache_write_tokens,
        reasoning_tokens=reasoning,
        chunk_size=reply.chunk_size,
        chunk_delay=reply.chunk_delay,
        delay=reply.delay,
    )


def _estimate_prompt(request: ChatRequest) -> int:
    parts = [m.text for m in request.messages]
    parts += [c.name + c.arguments for m in request.messages for c in m.tool_calls]
    parts += [t.name + t.description + json.dumps(t.parameters) for t in request.tools]
    # Every message costs a few tokens of framing, as with real tokenizers.
    return sum(estimate_tokens(p) for p in parts) + 3 * len(request.messages)
