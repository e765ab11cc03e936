"""An agent step end to end: the real agent runtime in a (test-only) process sandbox, talking to the supervisor
over a real unix socket, its LLM calls forwarded to a real scripted LLM server with the step's token."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from app.llm.scripted import CutStream, Hang, HttpError, Match, Reply, Script, ScriptedServer, ToolCall, Turn, Usage
from app.sandbox import stepdirs
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.rpc import RpcCall, RpcError, RpcRegistry, RpcTool
from app.sandbox.runner import Runner
from app.sandbox.session import Deadlines
from app.sandbox.step import AgentStep, FileChange, OutputSchema, StepControl
from app.sandbox.supervisor import Supervisor
from tests.processes import alive, eventually, pid_in
from tests.sandbox.conftest import Box
from tests.sandbox.supervision import TOKEN, MakeSupervisor, Recorder


def agent_step(**fields: Any) -> AgentStep:
    defaults: dict[str, Any] = {
        "id": "step-1",
        "model": "coder",
        "system_prompt": "You are a careful software engineer.",
        "input": "Write the notes.",
        "tools": ["read", "write", "edit", "bash", "grep", "find", "ls"],
        "max_turns": 5,
        "timeout_seconds": 30,
    }
    return AgentStep(**{**defaults, **fields})


def complete(outputs: dict[str, str], summary: str = "Done.") -> ToolCall:
    return ToolCall(name="complete", arguments={"outputs": outputs, "summary": summary}, id="call_complete")


async def run(supervisor: Supervisor, workdir: Path, step: AgentStep, **kw: Any) -> tuple[Any, Recorder]:
    recorder = Recorder()
    result = await supervisor.run_step(
        step, workspace_id="ws-1", workdir=workdir, llm_token=TOKEN, on_event=recorder, **kw
    )
    return result, recorder


async def test_the_demo_model_writes_a_file_and_completes_with_routed_outputs(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    step = agent_step(
        model="demo",
        outputs=["review_result", "review_feedback"],
        routing={"review_result": ["APPROVED", "CHANGES_REQUESTED"]},
    )
    result, events = await run(supervisor, workdir, step)

    assert result.status == "complete", result.error
    assert result.outputs["review_result"] == "APPROVED"
    assert "review_feedback" in result.outputs
    assert "NOTES.md" in (result.summary or "")
    notes = (workdir / "NOTES.md").read_text()
    assert "Write the notes." in notes and "review_result, review_feedback" in notes
    assert result.files_changed == (FileChange("NOTES.md", "created", len(notes.encode())),)
    assert result.exit_code == 0
    # The system prompt carried the persona and the convention lines the demo model read.
    system = llm.requests[0].messages[0].text
    assert system.startswith("You are a careful software engineer.")
    assert "Outputs: review_result, review_feedback" in system.splitlines()
    assert "Routing values for review_result: APPROVED, CHANGES_REQUESTED" in system.splitlines()
    assert events.types[-1] == "result"


async def test_events_arrive_in_order_and_the_outputs_and_file_come_back(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    write = ToolCall(name="write", arguments={"path": "src/hello.py", "content": "print('hi')\n"}, id="call_w")
    llm.register(
        "coder",
        Script.sequence(
            Reply(
                text="Writing the file now.",
                tool_calls=[write],
                chunk_size=5,
                usage=Usage(prompt_tokens=100, completion_tokens=20, cached_tokens=40),
            ),
            Reply(
                text="All done.",
                tool_calls=[complete({"result": "wrote src/hello.py"})],
                usage=Usage(prompt_tokens=150, completion_tokens=10),
            ),
        ),
    )
    result, events = await run(supervisor, workdir, agent_step(outputs=["result"]))

    assert result.status == "complete", result.error
    assert result.outputs == {"result": "wrote src/hello.py"}
    assert result.summary == "Done."
    assert (workdir / "src/hello.py").read_text() == "print('hi')\n"
    assert result.files_changed == (FileChange("src/hello.py", "created", 12),)
    assert (result.usage.input_tokens, result.usage.output_tokens, result.usage.cache_read_tokens) == (250, 30, 40)

    kinds = [t for t in events.types if t != "output"]
    assert kinds == [
        "status",
        "usage",
        "tool_start",
        "tool_end",
        "file_changed",
        "usage",
        "tool_start",
        "tool_end",
        "result",
    ]
    first_usage = events.types.index("usage")
    streamed = [e.data["text"] for e in events.events[:first_usage] if e.type == "output"]
    assert streamed == ["Writi", "ng th", "e fil", "e now", "."]
    start, end = events.of("tool_start")[0], events.of("tool_end")[0]
    assert (start["call_id"], start["tool"]) == ("call_w", "write")
    assert json.loads(start["args"]) == write.arguments
    assert (end["call_id"], end["ok"], end["result"]) == ("call_w", True, "Wrote 12 bytes to src/hello.py.")
    assert isinstance(end["duration_ms"], int) and end["duration_ms"] >= 0
    assert events.of("file_changed") == [{"path": "src/hello.py", "change": "created", "size": 12}]
    assert events.of("result")[0]["outputs"] == {"result": "wrote src/hello.py"}
    # The tool result went back to the model, and every call carried the step's token, not the runtime's.
    assert llm.requests[1].messages[-1].text == "Wrote 12 bytes to src/hello.py."
    assert {r.api_key for r in llm.requests} == {TOKEN}
    assert all(r.stream for r in llm.requests)


async def test_bash_changes_come_back_as_events_and_in_the_result(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    (workdir / "old.txt").write_text("old")
    command = "mkdir -p out && echo data > out/report.txt && rm old.txt && touch $'caf\\xe9.txt'"
    llm.register(
        "coder",
        Script.sequence(
            Reply(tool_calls=[ToolCall(name="bash", arguments={"command": command}, id="call_b")]),
            Reply(tool_calls=[complete({})]),
        ),
    )
    result, events = await run(supervisor, workdir, agent_step())
    assert result.status == "complete", result.error
    expected = [("caf\ufffd.txt", "created", 0), ("old.txt", "deleted", 0), ("out/report.txt", "created", 5)]
    assert [(e["path"], e["change"], e["size"]) for e in events.of("file_changed")] == expected
    assert [(c.path, c.change, c.size) for c in result.files_changed] == expected


async def test_thinking_is_relayed(llm: ScriptedServer, supervisor: Supervisor, workdir: Path) -> None:
    llm.register("coder", Script.sequence(Reply(thinking="Let me think.", tool_calls=[complete({})])))
    result, events = await run(supervisor, workdir, agent_step())
    assert result.status == "complete"
    assert "".join(e["text"] for e in events.of("thinking")) == "Let me think."


async def test_a_model_that_never_completes_stops_at_the_turn_limit(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register("coder", Script.always(Reply(text="Still thinking about it.")))
    result, events = await run(supervisor, workdir, agent_step(max_turns=3))

    assert result.status == "turn_limit"
    assert "3 turns" in (result.error or "")
    assert len(llm.requests) == 3
    # Between the turns the model was reminded how to finish.
    assert "call `complete`" in llm.requests[1].last_user_text
    assert events.types.count("usage") == 3


async def test_malformed_tool_arguments_get_an_error_result_not_a_crash(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register(
        "coder",
        Script.sequence(
            Reply(tool_calls=[ToolCall(name="write", arguments='{"path": "a.txt", "content": ', id="call_bad")]),
            Reply(tool_calls=[ToolCall(name="teleport", arguments={}, id="call_unknown")]),
            Reply(tool_calls=[ToolCall(name="complete", arguments={"outputs": {}, "summary": "x"}, id="c1")]),
            Reply(tool_calls=[complete({"answer": "42"})]),
        ),
    )
    result, events = await run(supervisor, workdir, agent_step(outputs=["answer"]))

    assert result.status == "complete", result.error
    assert result.outputs == {"answer": "42"}
    ends = events.of("tool_end")
    assert [e["ok"] for e in ends] == [False, False, False, True]
    assert "not valid JSON" in ends[0]["result"]
    assert "there is no tool 'teleport'" in ends[1]["result"]
    assert "missing: answer" in ends[2]["result"]
    assert not (workdir / "a.txt").exists()


async def test_complete_checks_routing_values_and_sizes(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register(
        "coder",
        Script.sequence(
            Reply(tool_calls=[complete({"verdict": "MAYBE"})]),
            Reply(tool_calls=[complete({"verdict": "APPROVED"}, summary="x" * 300_000)]),
            Reply(tool_calls=[complete({"verdict": "APPROVED", "n" * 201: "too long a name"})]),
            Reply(tool_calls=[complete({"verdict": "APPROVED"})]),
        ),
    )
    step = agent_step(outputs=["verdict"], routing={"verdict": ["APPROVED", "REJECTED"]})
    result, events = await run(supervisor, workdir, step)
    assert (result.status, result.outputs) == ("complete", {"verdict": "APPROVED"})
    ends = events.of("tool_end")
    assert ends[0]["result"] == "Error: the output verdict must be one of: APPROVED, REJECTED"
    assert ends[1]["result"].startswith("Error: the outputs and summary are too long")
    assert ends[2]["result"] == "Error: output names are at most 200 characters"
    # The routing values were offered in complete's schema too.
    schema = llm.requests[0].tool("complete").parameters
    assert schema["properties"]["outputs"]["properties"]["verdict"]["enum"] == ["APPROVED", "REJECTED"]


async def test_fail_ends_the_step_with_the_agents_reason(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    reason = "The repository has no tests to run."
    llm.register("coder", Script.sequence(Reply(tool_calls=[ToolCall(name="fail", arguments={"error": reason})])))
    result, _ = await run(supervisor, workdir, agent_step())
    assert (result.status, result.error, result.outputs) == ("fail", reason, {})


async def test_an_llm_error_fails_the_step_with_the_providers_message(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register("coder", Script.always(HttpError(status=400, message="This model does not exist here.")))
    result, _ = await run(supervisor, workdir, agent_step())
    assert result.status == "fail"
    assert "400" in (result.error or "") and "This model does not exist here." in (result.error or "")


async def test_a_step_past_its_timeout_ends_with_timeout_and_its_command_is_killed(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    sleeper = ToolCall(name="bash", arguments={"command": "echo $$ > sleeper.pid; exec sleep 60"}, id="call_sleep")
    llm.register("coder", Script.sequence(Reply(tool_calls=[sleeper])))
    started = asyncio.get_running_loop().time()
    result, events = await run(supervisor, workdir, agent_step(timeout_seconds=5))

    assert result.status == "timeout"
    assert "timeout of 5 s" in (result.error or "")
    assert asyncio.get_running_loop().time() - started < 20
    assert events.of("tool_end") == [
        {
            "call_id": "call_sleep",
            "tool": "bash",
            "ok": False,
            "result": "cancelled",
            "duration_ms": events.of("tool_end")[0]["duration_ms"],
        }
    ]
    sleeper_pid = pid_in(workdir / "sleeper.pid")
    assert sleeper_pid is not None and not alive(sleeper_pid)


async def test_abort_stops_a_running_tool_and_answers_aborted(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    sleeper = ToolCall(name="bash", arguments={"command": "echo $$ > sleeper.pid; exec sleep 60"}, id="call_sleep")
    llm.register("coder", Script.sequence(Reply(tool_calls=[sleeper])))
    control = StepControl()
    recorder = Recorder()
    aborting: list[asyncio.Task[None]] = []

    async def abort_once_running() -> None:
        await eventually(lambda: pid_in(workdir / "sleeper.pid"))
        control.abort("cancelled by the user")

    async def on_event(event: Any) -> None:
        await recorder(event)
        if event.type == "tool_start":
            aborting.append(asyncio.create_task(abort_once_running()))

    started = asyncio.get_running_loop().time()
    result = await supervisor.run_step(
        agent_step(), workspace_id="ws-1", workdir=workdir, llm_token=TOKEN, on_event=on_event, control=control
    )
    assert (result.status, result.error) == ("aborted", "cancelled by the user")
    assert asyncio.get_running_loop().time() - started < 10
    assert recorder.of("result")[0]["status"] == "aborted"
    assert recorder.of("tool_end")[0]["result"] == "cancelled"
    sleeper_pid = pid_in(workdir / "sleeper.pid")
    assert sleeper_pid is not None and not alive(sleeper_pid)


async def test_inject_reaches_the_model_with_its_next_turn(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register(
        "coder",
        Script(
            turns=[
                Turn(
                    match=Match(assistant_turns=0),
                    reply=Reply(tool_calls=[ToolCall(name="bash", arguments={"command": "sleep 1"})]),
                ),
                Turn(
                    match=Match(last_user_contains="Also mention the README."),
                    reply=Reply(tool_calls=[complete({"note": "mentioned the README"})]),
                ),
            ]
        ),
    )
    control = StepControl()
    recorder = Recorder()

    async def on_event(event: Any) -> None:
        await recorder(event)
        if event.type == "tool_start":
            control.inject("Also mention the README.")

    result = await supervisor.run_step(
        agent_step(outputs=["note"]),
        workspace_id="ws-1",
        workdir=workdir,
        llm_token=TOKEN,
        on_event=on_event,
        control=control,
    )
    assert result.status == "complete", result.error
    assert result.outputs == {"note": "mentioned the README"}
    # After the tool's result, as a user message of its own.
    assert [m.role for m in llm.requests[1].messages[-2:]] == ["tool", "user"]


async def test_structured_output_maps_top_level_fields_onto_outputs(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    schema = {
        "type": "object",
        "properties": {"verdict": {"type": "string", "enum": ["APPROVED", "REJECTED"]}, "score": {"type": "integer"}},
        "required": ["verdict", "score"],
    }
    step = agent_step(model="demo", outputs=["verdict", "score"], output_schema=OutputSchema("review", schema))
    result, events = await run(supervisor, workdir, step)

    assert result.status == "complete", result.error
    assert result.outputs["verdict"] in ("APPROVED", "REJECTED")
    assert int(result.outputs["score"]) == json.loads(result.outputs["score"])
    request = llm.requests[0]
    assert request.response_schema == schema and request.tools == ()
    assert "output" in events.types and "usage" in events.types


async def test_structured_output_with_one_output_is_the_whole_json(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register("coder", Script.sequence(Reply(structured={"tasks": [{"title": "Write tests"}]})))
    schema = {"type": "object", "properties": {"tasks": {"type": "array"}}}
    result, _ = await run(supervisor, workdir, agent_step(outputs=["plan"], output_schema=OutputSchema("plan", schema)))
    assert result.status == "complete", result.error
    assert json.loads(result.outputs["plan"]) == {"tasks": [{"title": "Write tests"}]}


async def test_an_rpc_tool_round_trip(llm: ScriptedServer, make_supervisor: MakeSupervisor, workdir: Path) -> None:
    calls: list[RpcCall] = []

    async def add_task(call: RpcCall) -> dict[str, Any]:
        calls.append(call)
        if not isinstance(call.params.get("title"), str):
            raise RpcError("invalid", "title must be a string")
        return {"task_id": 7, "title": call.params["title"]}

    parameters = {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]}
    registry = RpcRegistry(
        [
            RpcTool("board_add_task", "Add a task to the project board", parameters, add_task),
            RpcTool("memory_forget", "Not offered to this step", {"type": "object"}, add_task),
        ]
    )
    llm.register(
        "coder",
        Script.sequence(
            Reply(tool_calls=[ToolCall(name="board_add_task", arguments={"title": 3}, id="call_1")]),
            Reply(tool_calls=[ToolCall(name="board_add_task", arguments={"title": "Write tests"}, id="call_2")]),
            Reply(tool_calls=[complete({})]),
        ),
    )
    supervisor = make_supervisor(rpc=registry)
    step = agent_step(tools=["read", "board_add_task"])
    result, events = await run(supervisor, workdir, step, rpc_context={"run_id": "run-9"})

    assert result.status == "complete", result.error
    offered = {t.name for t in llm.requests[0].tools}
    assert offered == {"read", "board_add_task", "complete", "fail"}
    assert llm.requests[0].tool("board_add_task").description == "Add a task to the project board"
    assert [e["ok"] for e in events.of("tool_end")] == [False, True, True]
    assert events.of("tool_end")[0]["result"] == "Error: invalid: title must be a string"
    assert json.loads(llm.requests[2].messages[-1].text) == {"task_id": 7, "title": "Write tests"}
    assert [(c.workspace_id, c.step_id, c.context["run_id"]) for c in calls] == [("ws-1", "step-1", "run-9")] * 2


async def test_a_long_conversation_is_sent_in_pieces(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    # Over 128 Ki characters of input: the request body crosses the channel in several frames.
    big = "lorem ipsum " * 40_000
    llm.register("coder", Script.sequence(Reply(tool_calls=[complete({})])))
    result, _ = await run(supervisor, workdir, agent_step(input=big))
    assert result.status == "complete", result.error
    assert llm.requests[0].last_user_text == big.strip()


async def test_an_llm_answer_that_breaks_off_fails_the_step(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register("coder", Script.always(CutStream(after_chunks=2, reply=Reply(text="a long answer " * 20))))
    result, events = await run(supervisor, workdir, agent_step())
    assert result.status == "fail"
    expected = "the LLM call failed: Connection error. (the answer broke off: "
    assert (result.error or "").startswith(expected), result.error
    assert "output" in events.types  # what came before the break was relayed


async def test_a_hanging_llm_call_is_cancelled_at_the_steps_timeout(
    llm: ScriptedServer, supervisor: Supervisor, workdir: Path
) -> None:
    llm.register("coder", Script.always(Hang()))
    started = asyncio.get_running_loop().time()
    # Long enough for the runtime to start and call, even on a busy machine.
    result, events = await run(supervisor, workdir, agent_step(timeout_seconds=5))
    assert (result.status, result.error) == ("timeout", "the step ran past its timeout of 5 s")
    assert events.of("result")[0]["status"] == "timeout"  # the runtime's own answer, not the supervisor's kill
    assert asyncio.get_running_loop().time() - started < 15
    assert len(llm.requests) == 1


async def test_the_real_runtime_completes_a_step_in_each_runner(
    llm: ScriptedServer, runner: Runner, box: Box, channels_root: Path
) -> None:
    # Seen in `marid dev`: the local runner started the runtime without telling it where its channel is, so every
    # pipeline step failed with "exited (status 2) before saying hello". The runner now says it, as it mounts it.
    workdir = stepdirs.step_dir(box.files, "ws-a", "run-real", "step-real")
    supervisor = Supervisor(
        runner,
        LlmEndpoint(llm.openai_base_url),
        channels_root=channels_root,
        deadlines=Deadlines(hello_seconds=60, idle_seconds=30, grace_seconds=3, exit_seconds=5),
    )
    try:
        result = await supervisor.run_step(
            agent_step(model="demo", outputs=["summary"], tools=["read", "write", "ls"]),
            workspace_id="ws-a",
            workdir=workdir,
            llm_token=TOKEN,
        )
    finally:
        await supervisor.aclose()
    assert result.status == "complete", result.error
    assert (workdir / "NOTES.md").is_file() and result.outputs["summary"]
