"""One streamed LLM turn through the official ``openai`` SDK, its pieces relayed as they come.

Text goes out as ``output`` events and reasoning (``reasoning_content``, as vLLM and DeepSeek send it, or
``reasoning``) as ``thinking``; tool calls are gathered from their fragments; the usage comes with the last
chunk (``stream_options.include_usage``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, cast

import httpx2
import openai

from agent_runtime.events import Events
from agent_runtime.step import Step
from agent_runtime.tunnel import BASE_URL, ChannelTransport, LlmTunnel

# Seconds without a byte of an answer before the SDK gives up on it (and retries).
READ_TIMEOUT = 300.0


def client(tunnel: LlmTunnel) -> openai.AsyncOpenAI:
    # The key is a placeholder the SDK insists on; the supervisor drops it and adds the step's token.
    return openai.AsyncOpenAI(
        base_url=BASE_URL,
        api_key="no-key-in-the-sandbox",
        http_client=httpx2.AsyncClient(transport=ChannelTransport(tunnel)),
        timeout=httpx2.Timeout(READ_TIMEOUT, connect=30.0),
        max_retries=2,
    )


@dataclass
class Call:
    id: str
    name: str = ""
    arguments: str = ""


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0


@dataclass
class Turn:
    text: str = ""
    calls: list[Call] = field(default_factory=list)
    finish_reason: str | None = None
    usage: Usage = field(default_factory=Usage)

    def assistant_message(self) -> dict[str, Any]:
        message: dict[str, Any] = {"role": "assistant", "content": self.text or None}
        if self.calls:
            message["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
                for c in self.calls
            ]
        return message


async def stream_turn(
    llm: openai.AsyncOpenAI,
    step: Step,
    messages: list[dict[str, Any]],
    events: Events,
    *,
    tools: list[dict[str, Any]] | None = None,
    response_format: dict[str, Any] | None = None,
) -> Turn:
    turn = Turn()
    calls: dict[int, Call] = {}
    # Our messages and tools are plain dicts of the API's shapes: the SDK's TypedDicts add nothing here.
    stream = await llm.chat.completions.create(
        model=step.model,
        messages=cast(Any, messages),
        stream=True,
        stream_options={"include_usage": True},
        tools=cast(Any, tools) if tools else openai.omit,
        response_format=cast(Any, response_format) if response_format is not None else openai.omit,
        temperature=step.temperature if step.temperature is not None else openai.omit,
        max_completion_tokens=step.max_output_tokens if step.max_output_tokens is not None else openai.omit,
    )
    async with stream:
        async for chunk in stream:
            if chunk.usage is not None:
                turn.usage = _usage(chunk.usage)
            for choice in chunk.choices[:1]:
                delta = choice.delta
                extra = delta.model_extra or {}
                reasoning = extra.get("reasoning_content") or extra.get("reasoning")
                if isinstance(reasoning, str) and reasoning:
                    await events.thinking(reasoning)
                if delta.content:
                    turn.text += delta.content
                    await events.output(delta.content)
                for fragment in delta.tool_calls or []:
                    call = calls.setdefault(fragment.index, Call(id=f"call_{fragment.index}"))
                    if fragment.id:
                        call.id = fragment.id
                    if fragment.function is not None:
                        call.name += fragment.function.name or ""
                        call.arguments += fragment.function.arguments or ""
                if choice.finish_reason:
                    turn.finish_reason = choice.finish_reason
    turn.calls = [calls[i] for i in sorted(calls)]
    return turn


def _usage(usage: Any) -> Usage:
    details = usage.prompt_tokens_details
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=(details.cached_tokens or 0) if details is not None else 0,
        cache_write_tokens=(details.cache_write_tokens or 0) if details is not None else 0,
    )
