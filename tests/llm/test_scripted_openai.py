"""The scripted server through the official ``openai`` SDK: plain and streamed answers, tool calls, structured
output, usage, the model list, keys, and scripts that follow the conversation."""

from __future__ import annotations

import json
from typing import Any, Literal

import httpx
import openai
import pytest
from pydantic import BaseModel

from app.llm.scripted import Match, Reply, Script, ScriptedServer, ToolCall, Turn, Usage
from tests.llm.conftest import API_KEY

USER = [{"role": "user", "content": "Hello"}]
TOOLS: list[Any] = [
    {
        "type": "function",
        "function": {
            "name": "read",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}, "required": ["path"]},
        },
    },
    {"type": "function", "function": {"name": "ls", "parameters": {"type": "object", "properties": {}}}},
]


def test_a_plain_answer_with_its_usage(server: ScriptedServer, oai: openai.OpenAI) -> None:
    usage = Usage(prompt_tokens=120, completion_tokens=7, cached_tokens=100)
    server.register("greeter", Script.always(Reply(text="Hello there", usage=usage)))

    completion = oai.chat.completions.create(model="greeter", messages=USER)

    assert completion.id.startswith("chatcmpl-")
    assert completion.model == "greeter"
    choice = completion.choices[0]
    assert (choice.message.role, choice.message.content, choice.finish_reason) == ("assistant", "Hello there", "stop")
    assert choice.message.tool_calls is None
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (120, 7)
    assert completion.usage.total_tokens == 127
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 100
    # The scripted/ prefix reaches the same script, as a model string of the "scripted" provider would.
    again = oai.chat.completions.create(model="scripted/greeter", messages=USER)
    assert again.choices[0].message.content == "Hello there"


def test_streamed_text_comes_in_chunks_then_finish_then_usage(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register("chunky", Script.always(Reply(text="abcdefghij", chunk_size=3)))

    stream = oai.chat.completions.create(
        model="chunky",
        messages=USER,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)

    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].delta.content for c in chunks[1:5]] == ["abc", "def", "ghi", "j"]
    assert [c.choices[0].finish_reason for c in chunks[:-1]] == [None] * 5 + ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.completion_tokens == 3  # ten characters, about four a token
    assert all(c.usage is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1


def test_without_include_usage_no_chunk_carries_usage(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register("quiet", Script.always(Reply(text="hi")))
    chunks = list(oai.chat.completions.create(model="quiet", messages=USER, stream=True))
    assert all(c.usage is None and c.choices for c in chunks)


def test_streamed_tool_calls_through_the_stream_helper(server: ScriptedServer, oai: openai.OpenAI) -> None:
    calls = [ToolCall(name="read", arguments={"path": "README.md"}), ToolCall(name="ls", id="call_fixed")]
    server.register("caller", Script.always(Reply(text="Let me look.", tool_calls=calls, chunk_size=5)))

    with oai.chat.completions.stream(model="caller", messages=USER, tools=TOOLS) as stream:
        events = list(stream)
        final = stream.get_final_completion()

    done = [e for e in events if e.type == "tool_calls.function.arguments.done"]
    assert [(e.name, json.loads(e.arguments)) for e in done] == [("read", {"path": "README.md"}), ("ls", {})]
    assert sum(1 for e in events if e.type == "tool_calls.function.arguments.delta") > 2
    message = final.choices[0].message
    assert message.content == "Let me look."
    assert final.choices[0].finish_reason == "tool_calls"
    assert message.tool_calls is not None
    ids = [c.id for c in message.tool_calls]
    assert ids[0].startswith("call_") and ids[1] == "call_fixed"
    assert [c.function.name for c in message.tool_calls] == ["read", "ls"]


def test_tool_call_ids_are_stable_for_the_same_request(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register("stable", Script.always(Reply(tool_calls=[ToolCall(name="ls")])))
    first, second = (oai.chat.completions.create(model="stable", messages=USER) for _ in range(2))
    assert first.choices[0].message.tool_calls == second.choices[0].message.tool_calls
    assert first.choices[0].message.content is None


async def test_the_async_client_streams_and_calls_tools(server: ScriptedServer, async_oai: openai.AsyncOpenAI) -> None:
    server.register(
        "async", Script.sequence(Reply(text="streamed answer", chunk_size=4), Reply(tool_calls=[ToolCall(name="ls")]))
    )

    async with async_oai.chat.completions.stream(model="async", messages=USER) as stream:
        # The first chunk carries the role and an empty content, as OpenAI sends it.
        deltas = [e.delta async for e in stream if e.type == "content.delta" and e.delta]
    assert deltas == ["stre", "amed", " ans", "wer"]

    completion = await async_oai.chat.completions.create(model="async", messages=USER, tools=TOOLS)
    assert completion.choices[0].message.tool_calls is not None
    assert completion.choices[0].message.tool_calls[0].function.name == "ls"


class Verdict(BaseModel):
    verdict: Literal["APPROVED", "CHANGES_REQUESTED"]
    notes: str


def test_structured_output_parses_into_the_callers_model(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register(
        "judge",
        Script(
            turns=[
                Turn(
                    match=Match(structured=True),
                    reply=Reply(structured={"verdict": "APPROVED", "notes": "ok"}),
                    times=None,
                )
            ]
        ),
    )

    parsed = oai.chat.completions.parse(model="judge", messages=USER, response_format=Verdict)
    assert parsed.choices[0].message.parsed == Verdict(verdict="APPROVED", notes="ok")

    with oai.chat.completions.stream(model="judge", messages=USER, response_format=Verdict) as stream:
        final = stream.get_final_completion()
    assert final.choices[0].message.parsed == Verdict(verdict="APPROVED", notes="ok")
    schema = server.requests[-1].response_schema
    assert schema is not None and set(schema["properties"]) == {"verdict", "notes"}


def test_thinking_goes_out_as_reasoning_content(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register("thinker", Script.always(Reply(thinking="Six times seven.", text="42", chunk_size=8)))

    message = oai.chat.completions.create(model="thinker", messages=USER).choices[0].message
    assert (message.content, getattr(message, "reasoning_content", None)) == ("42", "Six times seven.")

    chunks = list(oai.chat.completions.create(model="thinker", messages=USER, stream=True))
    reasoning = "".join((c.choices[0].delta.model_extra or {}).get("reasoning_content", "") for c in chunks)
    assert reasoning == "Six times seven."


def test_a_script_follows_the_conversation_and_survives_a_retry(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register(
        "agent",
        Script(
            turns=[
                Turn(
                    match=Match(assistant_turns=0),
                    reply=Reply(tool_calls=[ToolCall(name="ls", id="call_1")]),
                    times=None,
                ),
                Turn(
                    match=Match(tool_result_for="call_1", tool_result_contains="README"),
                    reply=Reply(text="Found it."),
                    times=None,
                ),
            ]
        ),
    )
    first = oai.chat.completions.create(model="agent", messages=USER, tools=TOOLS)
    assert first.choices[0].message.tool_calls is not None
    conversation: list[Any] = [
        *USER,
        first.choices[0].message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": "call_1", "content": "README.md\napp/"},
    ]
    for _ in range(2):  # the same request twice, as a client's retry would send it
        answer = oai.chat.completions.create(model="agent", messages=conversation, tools=TOOLS)
        assert answer.choices[0].message.content == "Found it."
    last = server.requests[-1]
    assert [m.role for m in last.messages] == ["user", "assistant", "tool"]
    assert last.trailing_tool_results[0].tool_call_id == "call_1"
    assert last.called_tools == ("ls",)


def test_a_used_up_script_says_so(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register("once", Script.sequence(Reply(text="one")))
    assert oai.chat.completions.create(model="once", messages=USER).choices[0].message.content == "one"
    with pytest.raises(openai.BadRequestError, match="no turn of its script answers"):
        oai.chat.completions.create(model="once", messages=USER)


def test_the_model_list_names_the_demo_and_registered_models(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register("listed", Script.always(Reply(text="x")))
    assert {m.id for m in oai.models.list()} == {"demo", "listed"}
    assert oai.models.retrieve("scripted/listed").id == "listed"
    with pytest.raises(openai.NotFoundError):
        oai.models.retrieve("unlisted")


def test_unknown_models_bad_requests_and_wrong_keys_get_openai_errors(
    server: ScriptedServer, oai: openai.OpenAI
) -> None:
    with pytest.raises(openai.NotFoundError) as missing:
        oai.chat.completions.create(model="nope", messages=USER)
    assert missing.value.code == "model_not_found"
    assert missing.value.request_id and missing.value.request_id.startswith("req_")

    with pytest.raises(openai.BadRequestError) as bad:
        oai.chat.completions.create(model="demo", messages=[])
    assert bad.value.param == "messages"

    wrong = oai.with_options(api_key="sk-wrong")
    with pytest.raises(openai.AuthenticationError) as refused:
        wrong.chat.completions.create(model="demo", messages=USER)
    assert refused.value.code == "invalid_api_key"
    assert isinstance(refused.value.body, dict) and refused.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.AuthenticationError):
        wrong.models.list()

    not_json = httpx.post(
        f"{server.openai_base_url}/chat/completions", content=b"{", headers={"authorization": f"Bearer {API_KEY}"}
    )
    assert not_json.status_code == 400 and "parse the JSON" in not_json.json()["error"]["message"]


def test_a_script_per_key_answers_whatever_the_model(server: ScriptedServer, oai: openai.OpenAI) -> None:
    server.register_key("sk-workspace-b", Script.always(Reply(text="workspace B's provider")))

    other = oai.with_options(api_key="sk-workspace-b")
    assert (
        other.chat.completions.create(model="demo", messages=USER).choices[0].message.content
        == "workspace B's provider"
    )
    assert "demo model" in (oai.chat.completions.create(model="demo", messages=USER).choices[0].message.content or "")
    assert [r.api_key for r in server.requests] == ["sk-workspace-b", API_KEY]
    assert server.requests[0].headers["authorization"] == "Bearer sk-workspace-b"


def test_without_a_server_key_every_key_is_accepted() -> None:
    with (
        ScriptedServer() as open_server,
        openai.OpenAI(base_url=open_server.openai_base_url, api_key="anything") as client,
    ):
        assert client.chat.completions.create(model="demo", messages=USER).choices[0].message.content
