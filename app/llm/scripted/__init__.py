"""The scripted LLM server: a real HTTP server that speaks the OpenAI chat-completions and the Anthropic
messages protocols and answers from scripts. It is the demo model of ``marid dev`` and the LLM of the tests.

Start one in-process (a background thread, a free 127.0.0.1 port)::

    with ScriptedServer(api_key="sk-test") as server:
        server.register("echo", Script.sequence(Reply(text="Hello"), Reply(tool_calls=[ToolCall(name="ls")])))
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-test")

or as a process: ``python -m app.llm.scripted --port N`` (:func:`command` gives the argv, :func:`run` is the
function behind it; :class:`ScriptedAdmin` registers scripts in it over HTTP). Scripts and faults:
:mod:`app.llm.scripted.script`; the demo model and the ``Outputs:`` convention: :mod:`app.llm.scripted.demo`;
the whole story: ``docs/llm-scripted-server.md``. Nothing here imports the rest of Marid.
"""

from app.llm.scripted.admin import ScriptedAdmin
from app.llm.scripted.demo import DEMO_LABEL, DEMO_MODEL, DemoModel, StepConvention
from app.llm.scripted.request import ChatRequest, Message, ToolSpec, ToolUse
from app.llm.scripted.schema_example import example_for_schema
from app.llm.scripted.script import (
    CutStream,
    Fault,
    GarbageChunk,
    Hang,
    HttpError,
    MalformedJson,
    Match,
    Outcome,
    Reply,
    Responder,
    Script,
    ScriptDocument,
    StreamError,
    ToolCall,
    Turn,
    Usage,
    load_script_file,
    parse_outcome,
)
from app.llm.scripted.server import ScriptedServer, command, run

__all__ = [
    "DEMO_LABEL",
    "DEMO_MODEL",
    "ChatRequest",
    "CutStream",
    "DemoModel",
    "Fault",
    "GarbageChunk",
    "Hang",
    "HttpError",
    "MalformedJson",
    "Match",
    "Message",
    "Outcome",
    "Reply",
    "Responder",
    "Script",
    "ScriptDocument",
    "ScriptedAdmin",
    "ScriptedServer",
    "StepConvention",
    "StreamError",
    "ToolCall",
    "ToolSpec",
    "ToolUse",
    "Turn",
    "Usage",
    "command",
    "example_for_schema",
    "load_script_file",
    "parse_outcome",
    "run",
]
