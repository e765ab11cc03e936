"""The demo model ("Demo model (scripted, not an AI)"): finishes any agent loop sensibly without an LLM.

``marid dev`` serves it so that a new user can try everything without a key. It is deterministic: the same
request always gets the same answer. What it does, by what the request offers:

* **Tools ``write`` and ``complete``** (the agent runtime's tools; names compared without case): first it calls
  ``write`` with a small ``NOTES.md`` that says what it was asked; once the conversation holds that call, it
  calls ``complete`` with a value for every output the step asks for, and a summary. After ``complete`` it
  answers a short text. Only ``complete`` offered: it completes at once; only ``write``: it writes, then
  answers text. It never calls ``fail``.
* **Structured output** (a JSON schema, no tools): a small valid JSON value generated from the schema
  (:mod:`app.llm.scripted.schema_example`), with routing values filled in (below).
* **Anything else**: a short canned text saying that it is a scripted demo model.
* A ``tool_choice`` that forces one tool gets that tool, with arguments generated from its schema when it is
  neither ``write`` nor ``complete``; ``tool_choice`` "none" is treated as no tools.

**The convention between step prompts and the demo model.** The agent runtime (or the pipeline engine) puts
these machine-readable lines, each on a line of its own, in the system prompt or a user message:

    Outputs: name1, name2
    JSON array outputs: name1
    Routing values for name2: APPROVED, CHANGES_REQUESTED

``Outputs:`` lists the output names that ``complete(outputs, summary)`` must fill (the last such line counts).
``JSON array outputs:`` names those that must be a JSON array (a later step loops over them): the demo model
answers a one-item array, ``[{"title": ..., "details": ...}]``, so a demo loop runs once.
``Routing values for <output>:`` lists the values that the step's ``onResult`` routes on; the demo model picks
the first, so a demo run follows the first branch. Any other output gets a short placeholder text. The same
lines give the property values of a structured-output answer.

Arguments: ``write`` gets ``path`` and ``content`` (or whichever path-like and content-like properties its schema
declares, other required properties from their schema); ``complete`` gets ``outputs`` (an object of strings) and
``summary``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from app.llm.scripted.request import ChatRequest, ToolSpec
from app.llm.scripted.schema_example import example_for_schema
from app.llm.scripted.script import Outcome, Reply, ToolCall

DEMO_MODEL = "demo"
DEMO_LABEL = "Demo model (scripted, not an AI)"
NOTES_FILE = "NOTES.md"

_OUTPUTS = re.compile(r"^[ \t]*Outputs:[ \t]*(.*?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_ARRAYS = re.compile(r"^[ \t]*JSON array outputs:[ \t]*(.*?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_ROUTING = re.compile(r"^[ \t]*Routing values for[ \t]+(.+?):[ \t]*(.*?)[ \t]*$", re.MULTILINE | re.IGNORECASE)
_PATH_NAMES = ("path", "file_path", "filepath", "filename", "file")
_CONTENT_NAMES = ("content", "contents", "text", "data", "body")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


@dataclass(frozen=True)
class StepConvention:
    """The outputs and routing values a prompt asks for, per the convention above."""

    outputs: tuple[str, ...]
    routing: Mapping[str, tuple[str, ...]]
    arrays: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, prompt: str) -> StepConvention:
        found = _OUTPUTS.findall(prompt)
        outputs = tuple(_names(found[-1])) if found else ()
        routing = {name.strip(): tuple(_names(values)) for name, values in _ROUTING.findall(prompt) if _names(values)}
        arrays = frozenset(name for line in _ARRAYS.findall(prompt) for name in _names(line))
        return cls(outputs, routing, arrays)

    def value(self, output: str) -> str:
        if output in self.routing:
            return self.routing[output][0]
        if output in self.arrays:
            item = {"title": "Demo task", "details": "A task written by the demo model (scripted, not an AI)."}
            return json.dumps([item])
        return f"Demo {output}: written by the demo model (scripted, not an AI)."

    def outputs_object(self) -> dict[str, str]:
        return {name: self.value(name) for name in self.outputs}

    def hints(self) -> dict[str, str]:
        return {name: values[0] for name, values in self.routing.items()}


@dataclass(frozen=True)
class DemoModel:
    """The demo model as a responder; register it under any name (``marid dev`` uses :data:`DEMO_MODEL`)."""

    # Small pieces with a pause between them, so that streaming is visible in the UI.
    chunk_size: int = 12
    chunk_delay: float = 0.02

    def respond(self, request: ChatRequest) -> Outcome:
        convention = StepConvention.parse(request.prompt_text)
        tools = {t.name.lower(): t for t in request.tools} if request.tool_choice != "none" else {}
        if request.forced_tool is not None and request.forced_tool.lower() in tools:
            return self._call(request, convention, tools[request.forced_tool.lower()])
        called = {name.lower() for name in request.called_tools}
        if tools and "complete" not in called:
            if "write" in tools and "write" not in called:
                return self._call(request, convention, tools["write"])
            if "complete" in tools:
                return self._call(request, convention, tools["complete"])
            if request.tool_choice == "required":
                return self._call(request, convention, next(iter(tools.values())))
        if request.response_schema is not None and not tools:
            return self._reply(structured=example_for_schema(request.response_schema, convention.hints()))
        if "complete" in called:
            return self._reply(text="Done: the step is complete. (Demo model, scripted, not an AI.)")
        return self._reply(text=self._canned(request))

    def _reply(self, **fields: Any) -> Reply:
        return Reply(chunk_size=self.chunk_size, chunk_delay=self.chunk_delay, **fields)

    def _call(self, request: ChatRequest, convention: StepConvention, tool: ToolSpec) -> Reply:
        name = tool.name.lower()
        if name == "write":
            arguments = self._write_arguments(request, convention, tool)
        elif name == "complete":
            arguments = {
                **_required_examples(tool, skip=("outputs", "summary")),
                "outputs": convention.outputs_object(),
                "summary": "The demo model (scripted, not an AI) wrote NOTES.md and filled in every output.",
            }
        else:
            example = example_for_schema(tool.parameters or {"type": "object"}, convention.hints())
            arguments = example if isinstance(example, dict) else {}
        return self._reply(tool_calls=[ToolCall(name=tool.name, arguments=arguments)])

    def _write_arguments(self, request: ChatRequest, convention: StepConvention, tool: ToolSpec) -> dict[str, Any]:
        properties = tool.parameters.get("properties", {}) if isinstance(tool.parameters, Mapping) else {}
        path_key = next((n for n in _PATH_NAMES if n in properties), "path")
        content_key = next((n for n in _CONTENT_NAMES if n in properties), "content")
        asked = request.last_user_text.strip() or "(no user message)"
        quoted = "\n".join("> " + line for line in asked[:1500].splitlines())
        outputs = ", ".join(convention.outputs) or "none"
        content = (
            "# Notes from the demo model\n\n"
            "Marid's demo model (scripted, not an AI) wrote this file to show a tool call at work.\n\n"
            f"## What it was asked\n\n{quoted}\n\n"
            f"## Outputs the step asks for\n\n{outputs}\n"
        )
        return {**_required_examples(tool, skip=(path_key, content_key)), path_key: NOTES_FILE, content_key: content}

    def _canned(self, request: ChatRequest) -> str:
        asked = " ".join(request.last_user_text.split())
        echo = f' You wrote: "{asked[:80]}{"..." if len(asked) > 80 else ""}".' if asked else ""
        return (
            f"Hello! I am the demo model (scripted, not an AI): I answer from a script, so you can try Marid "
            f"without an LLM key.{echo} Add an LLM provider in the workspace settings to talk to a real model."
        )


def _required_examples(tool: ToolSpec, *, skip: tuple[str, ...]) -> dict[str, Any]:
    """Values for the required properties of a tool's schema that the demo has no meaning for."""
    schema = tool.parameters if isinstance(tool.parameters, Mapping) else {}
    properties = schema.get("properties", {})
    required = [n for n in schema.get("required", []) if n not in skip and n in properties]
    return {n: example_for_schema({"$defs": schema.get("$defs", {}), **properties[n]}) for n in required}
