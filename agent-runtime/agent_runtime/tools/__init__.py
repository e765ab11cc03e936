"""The runtime's tools: the built-in ones, the platform's RPC tools, and the schemas of complete and fail.

``complete`` and ``fail`` end the step, so the agent loop handles them itself; the toolbox only describes them.
"""

from __future__ import annotations

from collections.abc import Callable

from agent_runtime.rpc import RpcClient
from agent_runtime.step import Step
from agent_runtime.tools.base import JsonObject, Tool, ToolResult, schema
from agent_runtime.tools.bash import Bash
from agent_runtime.tools.files import Edit, Find, Grep, Ls, Read, Write
from agent_runtime.tools.rpc import RpcTool
from agent_runtime.workspace import Workspace

FINISHING = ("complete", "fail")

__all__ = ["BUILTIN", "FINISHING", "Tool", "ToolResult", "Toolbox"]


_BUILTIN_TOOLS: dict[str, Callable[[Workspace], Tool]] = {
    "read": Read,
    "write": Write,
    "edit": Edit,
    "bash": Bash,
    "grep": Grep,
    "find": Find,
    "ls": Ls,
}
BUILTIN = tuple(_BUILTIN_TOOLS)


def complete_schema(step: Step) -> JsonObject:
    properties: JsonObject = {}
    for name in step.outputs:
        prop: JsonObject = {"type": "string"}
        if step.routing.get(name):
            prop["enum"] = list(step.routing[name])
        properties[name] = prop
    outputs: JsonObject = {
        "type": "object",
        "description": "A value for every output of the step",
        "properties": properties,
        "required": list(step.outputs),
        "additionalProperties": {"type": "string"},
    }
    return {
        "type": "function",
        "function": {
            "name": "complete",
            "description": "Finish the step: the value of each output, and a short summary of what was done.",
            "parameters": {
                "type": "object",
                "properties": {"outputs": outputs, "summary": {"type": "string"}},
                "required": ["outputs", "summary"],
            },
        },
    }


FAIL_SCHEMA: JsonObject = {
    "type": "function",
    "function": {
        "name": "fail",
        "description": "Give up on the step when it cannot be done, saying why.",
        "parameters": {
            "type": "object",
            "properties": {"error": {"type": "string", "description": "What went wrong"}},
            "required": ["error"],
        },
    },
}


class Toolbox:
    def __init__(self, step: Step, workspace: Workspace, rpc: RpcClient) -> None:
        self.step = step
        self.tools: dict[str, Tool] = {}
        self.unknown: list[str] = []
        served = {spec.name: spec for spec in step.rpc_tools}
        for name in step.tools:
            if name in FINISHING or name in self.tools:
                continue
            if name in _BUILTIN_TOOLS:
                self.tools[name] = _BUILTIN_TOOLS[name](workspace)
            elif name in served:
                self.tools[name] = RpcTool(served[name], rpc)
            else:
                self.unknown.append(name)

    def schemas(self) -> list[JsonObject]:
        return [schema(tool) for tool in self.tools.values()] + [complete_schema(self.step), FAIL_SCHEMA]
