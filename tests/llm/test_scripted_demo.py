"""The demo model drives an agent loop to its end: the test plays the agent runtime with the official SDKs."""

from __future__ import annotations

import datetime
import json
from typing import Any, Literal

import anthropic
import openai
from pydantic import BaseModel, Field

from app.llm.scripted import DEMO_MODEL, ScriptedServer, StepConvention

SYSTEM = (
    "You are the reviewer.\n"
    "Outputs: review_result, review_feedback\n"
    "Routing values for review_result: APPROVED, CHANGES_REQUESTED\n"
)
TASK = "Review the login page change."


def _tool(name: str, properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "name": name,
        "description": name,
        "parameters": {"type": "object", "properties": properties, "required": required},
    }


STRING = {"type": "string"}
# The agent runtime's tools, as it will offer them.
RUNTIME_TOOLS = [
    _tool("read", {"path": STRING}, ["path"]),
    _tool("write", {"path": STRING, "content": STRING}, ["path", "content"]),
    _tool("edit", {"path": STRING, "old": STRING, "new": STRING}, ["path", "old", "new"]),
    _tool("bash", {"command": STRING}, ["command"]),
    _tool("grep", {"pattern": STRING, "path": STRING}, ["pattern"]),
    _tool("find", {"pattern": STRING}, ["pattern"]),
    _tool("ls", {"path": STRING}, []),
    _tool(
        "complete",
        {"outputs": {"type": "object", "additionalProperties": STRING}, "summary": STRING},
        ["outputs"],
    ),
    _tool("fail", {"error": STRING, "details": STRING}, ["error"]),
]
OPENAI_TOOLS: list[Any] = [{"type": "function", "function": t} for t in RUNTIME_TOOLS]
ANTHROPIC_TOOLS: list[Any] = [
    {"name": t["name"], "description": t["description"], "input_schema": t["parameters"]} for t in RUNTIME_TOOLS
]


def test_the_demo_model_writes_notes_then_completes_every_output(server: ScriptedServer, oai: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": TASK}]

    # Turn 1: it writes NOTES.md, streamed in visible pieces.
    with oai.chat.completions.stream(model=DEMO_MODEL, messages=messages, tools=OPENAI_TOOLS) as stream:
        argument_deltas = sum(1 for e in stream if e.type == "tool_calls.function.arguments.delta")
        first = stream.get_final_completion().choices[0]
    assert first.finish_reason == "tool_calls" and argument_deltas > 5
    assert first.message.tool_calls is not None
    (write,) = first.message.tool_calls
    assert write.function.name == "write"
    arguments = json.loads(write.function.arguments)
    assert arguments["path"] == "NOTES.md"
    assert TASK in arguments["content"] and "review_result, review_feedback" in arguments["content"]

    # Turn 2: given the write's result, it completes with every output, routing on the first value.
    messages += [
        first.message.model_dump(exclude_none=True, exclude={"parsed"}),
        {"role": "tool", "tool_call_id": write.id, "content": "Wrote 312 bytes to NOTES.md"},
    ]
    second = oai.chat.completions.create(model=DEMO_MODEL, messages=messages, tools=OPENAI_TOOLS).choices[0]
    assert second.message.tool_calls is not None
    (complete,) = second.message.tool_calls
    assert complete.function.name == "complete"
    completed = json.loads(complete.function.arguments)
    assert set(completed["outputs"]) == {"review_result", "review_feedback"}
    assert completed["outputs"]["review_result"] == "APPROVED"
    assert "demo model" in completed["outputs"]["review_feedback"] and completed["summary"]

    # A runtime that asks once more after complete gets a closing text, not another call.
    messages += [
        second.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": complete.id, "content": "Step complete"},
    ]
    third = oai.chat.completions.create(model=DEMO_MODEL, messages=messages, tools=OPENAI_TOOLS).choices[0]
    assert third.finish_reason == "stop" and third.message.tool_calls is None
    assert "Done" in (third.message.content or "")


def test_the_same_loop_over_the_anthropic_protocol(server: ScriptedServer, claude: anthropic.Anthropic) -> None:
    messages: list[Any] = [{"role": "user", "content": TASK}]
    first = claude.messages.create(
        model=DEMO_MODEL, max_tokens=1000, system=SYSTEM, messages=messages, tools=ANTHROPIC_TOOLS
    )
    assert first.stop_reason == "tool_use"
    write = first.content[0]
    assert write.type == "tool_use" and write.name == "write" and write.input["path"] == "NOTES.md"

    messages += [
        {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in first.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": write.id, "content": "ok"}]},
    ]
    with claude.messages.stream(
        model=DEMO_MODEL, max_tokens=1000, system=SYSTEM, messages=messages, tools=ANTHROPIC_TOOLS
    ) as stream:
        second = stream.get_final_message()
    complete = second.content[0]
    assert complete.type == "tool_use" and complete.name == "complete"
    assert complete.input["outputs"]["review_result"] == "APPROVED"


def test_only_complete_offered_completes_at_once(server: ScriptedServer, oai: openai.OpenAI) -> None:
    tools = [t for t in OPENAI_TOOLS if t["function"]["name"] in ("complete", "fail")]
    messages: list[Any] = [{"role": "user", "content": "Summarise.\nOutputs: summary"}]
    choice = oai.chat.completions.create(model=DEMO_MODEL, messages=messages, tools=tools).choices[0]
    assert choice.message.tool_calls is not None
    call = choice.message.tool_calls[0]
    assert call.function.name == "complete"
    assert list(json.loads(call.function.arguments)["outputs"]) == ["summary"]


class Item(BaseModel):
    title: str
    priority: Literal["P0", "P1", "P2"]
    estimate_hours: int = Field(ge=2, le=8)


class Plan(BaseModel):
    review_result: str
    items: list[Item]
    due: datetime.date
    owner: str | None
    confidence: float = Field(gt=0, lt=1)


def test_structured_output_is_valid_for_the_schema(server: ScriptedServer, oai: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": "Plan the work."}]

    plan = oai.chat.completions.parse(model=DEMO_MODEL, messages=messages, response_format=Plan)
    parsed = plan.choices[0].message.parsed

    assert parsed is not None
    assert parsed.review_result == "APPROVED"  # the routing value, for a property named like the output
    assert len(parsed.items) == 1 and parsed.items[0].priority == "P0" and parsed.items[0].estimate_hours == 2
    assert parsed.owner is not None and 0 < parsed.confidence < 1


def test_without_tools_it_says_what_it_is(server: ScriptedServer, oai: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "What can you do?"}]
    chunks = list(oai.chat.completions.create(model=DEMO_MODEL, messages=messages, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert "demo model (scripted, not an AI)" in text and "What can you do?" in text
    assert len(chunks) > 5  # small pieces, so that the UI shows it streaming
    plain = oai.chat.completions.create(model=DEMO_MODEL, messages=messages).choices[0].message.content
    assert plain == text  # deterministic


def test_tool_choice_is_obeyed(server: ScriptedServer, oai: openai.OpenAI) -> None:
    messages: list[Any] = [{"role": "user", "content": "Look for TODOs"}]
    forced = oai.chat.completions.create(
        model=DEMO_MODEL,
        messages=messages,
        tools=OPENAI_TOOLS,
        tool_choice={"type": "function", "function": {"name": "grep"}},
    ).choices[0]
    assert forced.message.tool_calls is not None
    grep = forced.message.tool_calls[0]
    assert grep.function.name == "grep"
    assert set(json.loads(grep.function.arguments)) == {"pattern", "path"}

    none = oai.chat.completions.create(model=DEMO_MODEL, messages=messages, tools=OPENAI_TOOLS, tool_choice="none")
    assert none.choices[0].message.tool_calls is None and none.choices[0].message.content

    chat_tools = [t for t in OPENAI_TOOLS if t["function"]["name"] in ("read", "ls")]
    chatting = oai.chat.completions.create(model=DEMO_MODEL, messages=messages, tools=chat_tools)
    assert chatting.choices[0].message.tool_calls is None


def test_the_step_convention_lines() -> None:
    prompt = (
        "Outputs: draft\n"
        "Do the work.\n"
        "  outputs:  architecture_doc , task_breakdown_json,deploy_status  \n"
        "Routing values for deploy_status: DEPLOYED , FAILED\n"
        "Routing values for nothing:\n"
        "JSON array outputs: task_breakdown_json\n"
    )
    convention = StepConvention.parse(prompt)
    assert convention.outputs == ("architecture_doc", "task_breakdown_json", "deploy_status")
    assert convention.routing == {"deploy_status": ("DEPLOYED", "FAILED")}
    assert convention.outputs_object()["deploy_status"] == "DEPLOYED"
    # An output a loop goes over is a JSON array of one task, so a demo loop runs once.
    tasks = json.loads(convention.outputs_object()["task_breakdown_json"])
    assert isinstance(tasks, list) and len(tasks) == 1 and tasks[0]["title"]
    assert not convention.outputs_object()["architecture_doc"].startswith("[")
    assert StepConvention.parse("no convention here").outputs == ()
