"""An Anthropic provider behind the gateway: the caller speaks OpenAI's protocol, the provider Anthropic's
(messages, system, tools, tool results, streamed deltas, stop reasons, usage with the cache)."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from app.config import Settings
from app.db import Database
from app.llm.scripted import Reply, Script, ScriptedServer, ToolCall, Usage
from tests.llm.gateway import GatewayServer, Tenant, calls_of, mint

TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file.",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    }
]


async def test_a_conversation_with_tools_is_translated_both_ways(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(
        tenant.anthropic_key,
        Script.sequence(
            Reply(
                thinking="The notes first.",
                tool_calls=[ToolCall(name="read", arguments={"path": "README.md"})],
                chunk_size=3,
                usage=Usage(prompt_tokens=2000, completion_tokens=100, cached_tokens=1500, cache_write_tokens=300),
            ),
            Reply(text="The README says hello.", chunk_size=4, finish_reason="length"),
        ),
    )
    token = await mint(db, settings, tenant.id)
    messages: list[Any] = [
        {"role": "system", "content": "You are Finn."},
        {"role": "user", "content": "What does the README say?"},
    ]
    async with gateway.client(token.token) as client:
        async with client.chat.completions.stream(
            model="claude/priced", messages=messages, tools=TOOLS, stream_options={"include_usage": True}
        ) as stream:
            async for _ in stream:
                pass
            first = await stream.get_final_completion()
        choice = first.choices[0]
        assert choice.finish_reason == "tool_calls"
        (call,) = choice.message.tool_calls or []
        assert call.function.name == "read" and json.loads(call.function.arguments) == {"path": "README.md"}
        assert first.usage is not None and first.usage.prompt_tokens == 2000 and first.usage.completion_tokens == 100
        messages += [
            choice.message.model_dump(exclude_none=True),
            {"role": "tool", "tool_call_id": call.id, "content": "hello"},
        ]
        second = await client.chat.completions.create(model="claude/priced", messages=messages, tools=TOOLS)
    assert second.choices[0].message.content == "The README says hello."
    assert second.choices[0].finish_reason == "length"

    # What Anthropic received: the system prompt apart, tools as input schemas, the result as a tool_result.
    body = llm.requests[-1].body
    assert llm.requests[-1].protocol == "anthropic" and llm.requests[-1].api_key == tenant.anthropic_key
    assert body["system"] == [{"type": "text", "text": "You are Finn."}]
    assert body["tools"][0]["name"] == "read" and body["tools"][0]["input_schema"]["required"] == ["path"]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][1]["content"][0] == {
        "type": "tool_use",
        "id": call.id,
        "name": "read",
        "input": {"path": "README.md"},
    }
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": call.id, "content": "hello"}]

    first_call, second_call = await calls_of(db, tenant.id, 2)
    assert first_call.provider == "claude" and first_call.stream and first_call.tool_calls == 1
    assert first_call.stop_reason == "tool_calls" and second_call.stop_reason == "length"
    assert (first_call.input_tokens, first_call.cache_read_tokens, first_call.cache_write_tokens) == (200, 1500, 300)
    expected = (200 * Decimal(3) + 1500 * Decimal("0.30") + 300 * Decimal("3.75") + 100 * Decimal(15)) / 1_000_000
    assert first_call.cost == expected


async def test_a_whole_answer_and_structured_output(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(tenant.anthropic_key, Script.always(Reply(structured={"result": "APPROVED"})))
    token = await mint(db, settings, tenant.id)
    schema = {"type": "object", "properties": {"result": {"type": "string"}}, "required": ["result"]}
    async with gateway.client(token.token) as client:
        answer = await client.chat.completions.create(
            model="claude/coder",
            messages=[{"role": "user", "content": "Review it."}],
            response_format={"type": "json_schema", "json_schema": {"name": "review", "schema": schema}},
            max_completion_tokens=300,
            temperature=1.5,
            stop=["END"],
        )
    assert json.loads(answer.choices[0].message.content or "") == {"result": "APPROVED"}
    assert answer.choices[0].finish_reason == "stop"
    body = llm.requests[-1].body
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
    assert body["max_tokens"] == 300 and "temperature" not in body and body["stop_sequences"] == ["END"]
    (call,) = await calls_of(db, tenant.id, 1)
    assert call.status == "ok" and not call.stream and call.output_tokens > 0


async def test_a_streamed_text_answer_reads_like_openai(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(tenant.anthropic_key, Script.always(Reply(text="Bonjour tout le monde", chunk_size=3)))
    token = await mint(db, settings, tenant.id)
    async with gateway.client(token.token) as client:
        stream = await client.chat.completions.create(
            model="claude/coder", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        pieces = [
            chunk.choices[0].delta.content async for chunk in stream if chunk.choices and chunk.choices[0].delta.content
        ]
    assert "".join(pieces) == "Bonjour tout le monde" and len(pieces) > 3
    (call,) = await calls_of(db, tenant.id, 1)
    assert call.stop_reason == "stop" and call.first_token_ms is not None
