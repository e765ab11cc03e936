"""The agent loop: ask the model, run the tools it calls, until it calls ``complete`` or ``fail`` or the turns run
out. A turn is one LLM call. Text injected by the supervisor joins the conversation before the next turn.

Everything the model gets wrong (unknown tools, arguments that are not JSON, outputs that miss a name) becomes
a tool result it can correct; the loop itself only stops for the endings above, a timeout or an abort.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

import openai

from agent_runtime.events import Events
from agent_runtime.llm import Call, stream_turn
from agent_runtime.outcome import Outcome
from agent_runtime.prompt import system_prompt, user_message
from agent_runtime.protocol import outputs_problem
from agent_runtime.step import Step
from agent_runtime.tools import Toolbox, ToolResult

# ``complete``'s outputs and summary together, as JSON, at most (bytes): long content belongs in a file.
OUTPUTS_LIMIT = 256 * 1024
NUDGE = (
    "You answered without calling a tool. Carry on with the step; when it is done, call `complete` with every "
    "output, or `fail` if it cannot be done."
)


class AgentLoop:
    def __init__(
        self,
        step: Step,
        llm: openai.AsyncOpenAI,
        toolbox: Toolbox,
        events: Events,
        workspace: str,
        *,
        injected: list[str] | None = None,
    ) -> None:
        self.step = step
        self.llm = llm
        self.toolbox = toolbox
        self.events = events
        self.injected = injected if injected is not None else []
        self.messages: list[dict[str, Any]] = [
            {"role": "system", "content": system_prompt(step, workspace)},
            {"role": "user", "content": user_message(step)},
        ]

    def inject(self, text: str) -> None:
        self.injected.append(text)

    async def run(self) -> Outcome:
        for name in self.toolbox.unknown:
            await self.events.log("warning", f"the step names a tool this runtime does not have: {name}")
        tools = self.toolbox.schemas()
        for _ in range(self.step.max_turns):
            while self.injected:
                self.messages.append({"role": "user", "content": self.injected.pop(0)})
            turn = await stream_turn(self.llm, self.step, self.messages, self.events, tools=tools)
            u = turn.usage
            await self.events.usage(u.input_tokens, u.output_tokens, u.cache_read_tokens, u.cache_write_tokens)
            self.messages.append(turn.assistant_message())
            if not turn.calls:
                self.messages.append({"role": "user", "content": NUDGE})
                continue
            for call in turn.calls:
                ending = await self._call(call)
                if ending is not None:
                    return ending
        return Outcome(
            "turn_limit", error=f"the step used its {self.step.max_turns} turns without calling complete or fail"
        )

    async def _call(self, call: Call) -> Outcome | None:
        started = time.monotonic()
        await self.events.tool_start(call.id, call.name, call.arguments)
        try:
            result, ending = await self._execute(call)
        except BaseException:
            self.events.tool_cancelled(call.id, call.name, _ms_since(started))
            raise
        await self.events.tool_end(call.id, call.name, result.ok, result.text, _ms_since(started))
        for change in result.changes:
            await self.events.file_changed(change)
        self.messages.append({"role": "tool", "tool_call_id": call.id, "content": result.text})
        return ending

    async def _execute(self, call: Call) -> tuple[ToolResult, Outcome | None]:
        try:
            args = json.loads(call.arguments) if call.arguments.strip() else {}
        except ValueError as error:
            message = f"the arguments of {call.name} are not valid JSON ({error}); send a JSON object"
            return ToolResult.error(message), None
        if not isinstance(args, dict):
            return ToolResult.error(f"the arguments of {call.name} must be a JSON object"), None
        if call.name == "complete":
            return self._complete(args)
        if call.name == "fail":
            reason = args.get("error")
            reason = reason if isinstance(reason, str) and reason.strip() else "the agent gave up without a reason"
            return ToolResult(True, "The step is marked as failed."), Outcome("fail", error=reason)
        tool = self.toolbox.tools.get(call.name)
        if tool is None:
            available = ", ".join([*self.toolbox.tools, "complete", "fail"])
            return ToolResult.error(f"there is no tool {call.name!r}; the tools are: {available}"), None
        try:
            return await tool.run(args), None
        except Exception as error:  # a bug in a tool must not end the step: the model hears of it
            return ToolResult.error(f"the tool {call.name} broke: {type(error).__name__}: {error}"), None

    def _complete(self, args: Mapping[str, Any]) -> tuple[ToolResult, Outcome | None]:
        raw = args.get("outputs", {})
        if not isinstance(raw, dict):
            return ToolResult.error("outputs must be an object of output name to text"), None
        outputs = {str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False) for k, v in raw.items()}
        problem = outputs_problem(outputs)
        if problem is not None:
            return ToolResult.error(problem), None
        missing = [name for name in self.step.outputs if name not in outputs]
        if missing:
            return ToolResult.error(f"complete needs a value for every output; missing: {', '.join(missing)}"), None
        for name, values in self.step.routing.items():
            if values and name in outputs and outputs[name] not in values:
                return ToolResult.error(f"the output {name} must be one of: {', '.join(values)}"), None
        summary = args.get("summary")
        summary = summary if isinstance(summary, str) else ""
        # Measured as they go on the channel (escapes included), so the result frame stays under its line limit.
        if len(json.dumps([outputs, summary], ensure_ascii=False).encode()) > OUTPUTS_LIMIT:
            message = "the outputs and summary are too long: write long content to a file and name the file"
            return ToolResult.error(message), None
        return ToolResult(True, "The step is complete."), Outcome("complete", outputs, summary)


def _ms_since(started: float) -> int:
    return int((time.monotonic() - started) * 1000)
