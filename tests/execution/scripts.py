"""Scripted "agents" for the engine's tests: the demo model's step convention, with a few deliberate turns.

A :class:`StepScript` answers like the demo model (``write`` a note, then ``complete`` with every output the
prompt's ``Outputs:`` line asks for, routing values from ``Routing values for``), except where told: an output
given a fixed value (``values``), a value per visit (``sequences``: the first visit gets the first value), a
step that fails its first ``failures[step]`` attempts (it calls ``fail``). The step is recognised by the
prompt's "This is step X of the pipeline" line.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app.llm.scripted import Reply
from app.llm.scripted.demo import StepConvention
from app.llm.scripted.request import ChatRequest
from app.llm.scripted.schema_example import example_for_schema
from app.llm.scripted.script import ToolCall

_STEP = re.compile(r"This is step (\S+) of the pipeline")


@dataclass
class StepScript:
    values: Mapping[str, str] = field(default_factory=dict)
    sequences: Mapping[str, Sequence[str]] = field(default_factory=dict)
    failures: Mapping[str, int] = field(default_factory=dict)
    # Seconds before a step's first answer, by step (the chaos test kills a worker while a step waits here).
    delays: Mapping[str, float] = field(default_factory=dict)
    # Structured-output steps: the JSON value each step answers (absent: an example valid for the schema).
    structured: Mapping[str, Any] = field(default_factory=dict)
    # What each step's visits completed with: step -> [outputs, ...] (to check nothing ran twice).
    completed: dict[str, list[dict[str, str]]] = field(default_factory=dict)
    _uses: Counter[str] = field(default_factory=Counter)
    _failed: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def respond(self, request: ChatRequest) -> Reply:
        convention = StepConvention.parse(request.prompt_text)
        found = _STEP.search(request.prompt_text)
        step = found.group(1) if found else ""
        called = {name.lower() for name in request.called_tools}
        tools = {t.name.lower() for t in request.tools}
        if request.response_schema is not None and not tools:
            value = self.structured.get(step)
            with self._lock:
                self.completed.setdefault(step, []).append({"structured": json.dumps(value)})
            if value is None:
                value = example_for_schema(request.response_schema, convention.hints())
            return Reply(structured=value)
        if "complete" in called or "fail" in called:
            return Reply(text="Done.")
        if "write" in tools and "write" not in called:
            return Reply(
                tool_calls=[ToolCall(name="write", arguments={"path": f"{step or 'step'}.md", "content": step})],
                delay=self.delays.get(step, 0.0),
            )
        with self._lock:
            if self._failed[step] < self.failures.get(step, 0):
                self._failed[step] += 1
                return Reply(tool_calls=[ToolCall(name="fail", arguments={"error": f"{step} broke on purpose"})])
            outputs = convention.outputs_object()
            for name in outputs:
                if name in self.sequences:
                    values = self.sequences[name]
                    used = self._uses[name]
                    self._uses[name] += 1
                    outputs[name] = values[min(used, len(values) - 1)]
                elif name in self.values:
                    outputs[name] = self.values[name]
            self.completed.setdefault(step, []).append(outputs)
        return Reply(tool_calls=[ToolCall(name="complete", arguments={"outputs": outputs, "summary": f"{step} done"})])


TASKS = json.dumps([{"title": "Add the endpoint"}, {"title": "Write the docs"}])
