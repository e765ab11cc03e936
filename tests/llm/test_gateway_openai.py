"""The gateway driven through the official ``openai`` client as a sandbox drives it, against a scripted
OpenAI-compatible provider: streamed text, tool calls, whole answers, structured output; each call logged."""

from __future__ import annotations

import json
from decimal import Decimal

import openai

from app.config import Settings
from app.db import Database
from app.llm.scripted import Reply, Script, ScriptedServer, ToolCall, Usage
from tests.llm.gateway import USER, GatewayServer, Tenant, calls_of, mint


async def test_a_streamed_answer_is_relayed_and_logged(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(
        tenant.key,
        Script.always(
            Reply(
                text="Here are the notes you asked for.",
                chunk_size=5,
                usage=Usage(prompt_tokens=1000, completion_tokens=200, cached_tokens=400),
            )
        ),
    )
    token = await mint(db, settings, tenant.id, agent="finn", run="run_1", step="step_1")
    async with gateway.client(token.token) as client:
        stream = await client.chat.completions.create(
            model="scripted/priced", messages=USER, stream=True, stream_options={"include_usage": True}
        )
        text, usage, finish = "", None, None
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
                finish = chunk.choices[0].finish_reason or finish
            if chunk.usage is not None:
                usage = chunk.usage
    assert text == "Here are the notes you asked for."
    assert finish == "stop"
    assert usage is not None and usage.prompt_tokens == 1000 and usage.completion_tokens == 200
    # The provider got the workspace's key and its own model name, never the token.
    request = llm.requests[-1]
    assert request.api_key == tenant.key and request.model == "priced"
    assert token.token not in json.dumps(request.body) and token.token not in json.dumps(dict(request.headers))
    (call,) = await calls_of(db, tenant.id, 1)
    assert (call.agent_id, call.run_id, call.step_id, call.model, call.provider) == (
        "finn", "run_1", "step_1", "scripted/priced", "scripted",
    )  # fmt: skip
    assert call.status == "ok" and call.stream and call.stop_reason == "stop" and call.tool_calls == 0
    # 600 uncached input at $3/M, 400 cached at $0.30/M, 200 output at $15/M.
    assert (call.input_tokens, call.cache_read_tokens, call.output_tokens) == (600, 400, 200)
    assert call.cost == Decimal("0.0018") + Decimal("0.00012") + Decimal("0.003")
    assert not call.cost_approximate
    assert call.first_token_ms is not None and call.total_ms >= call.first_token_ms


async def test_tool_calls_stream_through(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(
        tenant.key,
        Script.sequence(
            Reply(tool_calls=[ToolCall(name="write", arguments={"path": "NOTES.md", "content": "hi"})], chunk_size=4),
            Reply(text="Done."),
        ),
    )
    token = await mint(db, settings, tenant.id)
    tools = [
        {
            "type": "function",
            "function": {
                "name": "write",
                "parameters": {
                    "type": "object",
                    "properties": {"path": {"type": "string"}, "content": {"type": "string"}},
                },
            },
        }
    ]
    async with gateway.client(token.token) as client:
        async with client.chat.completions.stream(model="scripted/coder", messages=USER, tools=tools) as stream:
            async for _ in stream:
                pass
            first = await stream.get_final_completion()
        call = first.choices[0].message.tool_calls[0]
        assert first.choices[0].finish_reason == "tool_calls"
        assert call.function.name == "write" and json.loads(call.function.arguments) == {
            "path": "NOTES.md",
            "content": "hi",
        }
        messages = [*USER, first.choices[0].message.model_dump(exclude_none=True)]
        messages.append({"role": "tool", "tool_call_id": call.id, "content": "written"})
        second = await client.chat.completions.create(model="scripted/coder", messages=messages, tools=tools)
    assert second.choices[0].message.content == "Done."
    calls = await calls_of(db, tenant.id, 2)
    assert [c.tool_calls for c in calls] == [1, 0]
    assert [c.stop_reason for c in calls] == ["tool_calls", "stop"]
    assert [c.stream for c in calls] == [True, False]


async def test_structured_output_is_passed_on(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(tenant.key, Script.always(Reply(structured={"verdict": "APPROVED"})))
    token = await mint(db, settings, tenant.id)
    schema = {"type": "object", "properties": {"verdict": {"type": "string"}}, "required": ["verdict"]}
    async with gateway.client(token.token) as client:
        answer = await client.chat.completions.create(
            model="scripted/coder",
            messages=USER,
            response_format={
                "type": "json_schema",
                "json_schema": {"name": "review", "schema": schema, "strict": True},
            },
        )
    assert json.loads(answer.choices[0].message.content or "") == {"verdict": "APPROVED"}
    assert llm.requests[-1].body["response_format"]["type"] == "json_schema"


async def test_a_model_missing_from_the_catalogue_still_goes_at_an_approximate_cost(
    db: Database, settings: Settings, llm: ScriptedServer, gateway: GatewayServer, tenant: Tenant
) -> None:
    llm.register_key(tenant.key, Script.always(Reply(text="ok", usage=Usage(prompt_tokens=10, completion_tokens=5))))
    token = await mint(db, settings, tenant.id)
    async with gateway.client(token.token) as client:
        await client.chat.completions.create(model="scripted/unpriced-model", messages=USER)
    (call,) = await calls_of(db, tenant.id, 1)
    assert call.cost == 0 and call.cost_approximate and call.status == "ok"


async def test_an_unknown_provider_is_refused_and_logged(
    db: Database, settings: Settings, gateway: GatewayServer, tenant: Tenant
) -> None:
    token = await mint(db, settings, tenant.id)
    async with gateway.client(token.token) as client:
        try:
            await client.chat.completions.create(model="nowhere/gpt-4.1", messages=USER)
        except openai.NotFoundError as refused:
            assert "Unknown model “nowhere/gpt-4.1”" in str(refused) and "claude, scripted" in str(refused)
        else:
            raise AssertionError("an unknown provider was accepted")
    (call,) = await calls_of(db, tenant.id, 1)
    assert call.status == "refused" and call.http_status == 404 and call.cost == 0
