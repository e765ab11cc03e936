"""The scripted server through the official ``anthropic`` SDK: messages, ``messages.stream`` with text, thinking
and tool use, cache usage, structured output, the model list and Anthropic's errors."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx
import pytest

from app.llm.scripted import Match, Reply, Script, ScriptedServer, ToolCall, Turn, Usage
from tests.llm.conftest import API_KEY

USER: list[Any] = [{"role": "user", "content": "Hello"}]
TOOLS: list[Any] = [
    {
        "name": "read",
        "description": "Read a file",
        "input_schema": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
    }
]


def test_a_message_with_cache_usage(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    usage = Usage(prompt_tokens=100, completion_tokens=9, cached_tokens=60, cache_write_tokens=30)
    server.register("greeter", Script.always(Reply(text="Hello there", usage=usage)))

    message = claude.messages.create(model="greeter", max_tokens=100, messages=USER)

    assert message.id.startswith("msg_") and message.model == "greeter" and message.role == "assistant"
    assert [(b.type, getattr(b, "text", None)) for b in message.content] == [("text", "Hello there")]
    assert message.stop_reason == "end_turn"
    # Anthropic counts the cached parts of the input apart from input_tokens.
    assert (message.usage.input_tokens, message.usage.output_tokens) == (10, 9)
    assert (message.usage.cache_read_input_tokens, message.usage.cache_creation_input_tokens) == (60, 30)


def test_messages_stream_delivers_text_in_pieces(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    server.register("chunky", Script.always(Reply(text="abcdefghij", chunk_size=4, usage=Usage(completion_tokens=5))))

    with claude.messages.stream(model="chunky", max_tokens=100, messages=USER) as stream:
        pieces = list(stream.text_stream)
        final = stream.get_final_message()

    assert pieces == ["abcd", "efgh", "ij"]
    assert final.content[0].type == "text" and final.content[0].text == "abcdefghij"
    assert final.stop_reason == "end_turn"
    assert final.usage.output_tokens == 5 and final.usage.input_tokens > 0


def test_tool_use_streams_as_input_json(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    call = ToolCall(name="read", arguments={"path": "docs/a file.md"})
    server.register("caller", Script.always(Reply(text="Reading.", tool_calls=[call], chunk_size=6)))

    with claude.messages.stream(model="caller", max_tokens=100, messages=USER, tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_message()

    partials = [e.partial_json for e in events if e.type == "input_json"]
    assert len(partials) > 2 and json.loads("".join(partials)) == {"path": "docs/a file.md"}
    assert [b.type for b in final.content] == ["text", "tool_use"]
    tool_use = final.content[1]
    assert tool_use.type == "tool_use"
    assert tool_use.id.startswith("toolu_") and tool_use.name == "read"
    assert tool_use.input == {"path": "docs/a file.md"}
    assert final.stop_reason == "tool_use"
    assert {e.type for e in events} >= {"message_start", "content_block_start", "content_block_stop", "message_stop"}


def test_thinking_is_a_thinking_block(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    server.register("thinker", Script.always(Reply(thinking="Six times seven.", text="42", chunk_size=5)))

    with claude.messages.stream(model="thinker", max_tokens=100, messages=USER) as stream:
        thoughts = [e.thinking for e in stream if e.type == "thinking"]
        final = stream.get_final_message()
    assert "".join(thoughts) == "Six times seven."
    thinking = final.content[0]
    assert thinking.type == "thinking" and thinking.thinking == "Six times seven." and thinking.signature
    assert final.content[1].type == "text" and final.content[1].text == "42"

    message = claude.messages.create(model="thinker", max_tokens=100, messages=USER)
    assert [b.type for b in message.content] == ["thinking", "text"]


async def test_the_async_client_follows_a_tool_result(
    server: ScriptedServer, async_claude: anthropic.AsyncAnthropic
) -> None:
    server.register(
        "agent",
        Script(
            turns=[
                Turn(match=Match(assistant_turns=0), reply=Reply(tool_calls=[ToolCall(name="read", id="toolu_1")])),
                Turn(match=Match(tool_result_for="toolu_1"), reply=Reply(text="The file says hi.")),
            ]
        ),
    )
    first = await async_claude.messages.create(model="agent", max_tokens=100, messages=USER, tools=TOOLS)
    assert first.stop_reason == "tool_use"
    conversation: list[Any] = [
        *USER,
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "hi"}]},
    ]
    async with async_claude.messages.stream(
        model="agent", max_tokens=100, messages=conversation, tools=TOOLS
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[0].type == "text" and final.content[0].text == "The file says hi."
    last = server.requests[-1]
    assert last.protocol == "anthropic"
    assert [m.role for m in last.messages] == ["user", "assistant", "tool"]
    assert last.called_tools == ("read",)


def test_structured_output_in_output_config(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    server.register(
        "judge",
        Script(turns=[Turn(match=Match(structured=True, protocol="anthropic"), reply=Reply(structured={"ok": True}))]),
    )
    schema = {"type": "object", "properties": {"ok": {"type": "boolean"}}, "required": ["ok"]}
    message = claude.messages.create(
        model="judge",
        max_tokens=100,
        messages=USER,
        output_config={"format": {"type": "json_schema", "schema": schema}},
    )
    assert message.content[0].type == "text" and json.loads(message.content[0].text) == {"ok": True}


def test_the_model_list_has_display_names(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    models = {m.id: m.display_name for m in claude.models.list()}
    assert models == {"demo": "Demo model (scripted, not an AI)"}
    assert claude.models.retrieve("demo").display_name == "Demo model (scripted, not an AI)"
    with pytest.raises(anthropic.NotFoundError):
        claude.models.retrieve("unlisted")


def test_anthropic_errors(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.create(model="nope", max_tokens=10, messages=USER)
    assert missing.value.body == {"type": "error", "error": {"type": "not_found_error", "message": "model: nope"}}
    assert missing.value.request_id and missing.value.request_id.startswith("req_")

    with pytest.raises(anthropic.AuthenticationError) as refused:
        claude.with_options(api_key="sk-wrong").messages.create(model="demo", max_tokens=10, messages=USER)
    assert isinstance(refused.value.body, dict) and refused.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.BadRequestError, match="role"):
        claude.messages.create(model="demo", max_tokens=10, messages=[{"role": "system", "content": "x"}])

    url = f"{server.anthropic_base_url}/v1/messages"
    body = {"model": "demo", "messages": USER}
    no_version = httpx.post(url, json={**body, "max_tokens": 10}, headers={"x-api-key": API_KEY})
    assert no_version.status_code == 400 and "anthropic-version" in no_version.json()["error"]["message"]
    no_max_tokens = httpx.post(url, json=body, headers={"x-api-key": API_KEY, "anthropic-version": "2023-06-01"})
    assert no_max_tokens.status_code == 400 and no_max_tokens.json()["error"]["type"] == "invalid_request_error"
