"""Platform tools served to sandboxes: a registry of handlers, answered over ``rpc_request``/``rpc_response``.

Later features (board, memory, messaging, swarm) register a :class:`RpcTool` here: its name, the JSON schema
the model sees, and an async handler. A step offers only the RPC tools its ``tools`` list names (an allow-list
per step); a call to anything else is refused. Handlers get the call's context (which workspace, step and
sandbox), never anything from the sandbox beyond its parameters, which they must validate themselves.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

logger = logging.getLogger(__name__)


class RpcError(Exception):
    """Raised by a handler: the runtime (and the model) get ``code`` and ``message``."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class RpcCall:
    method: str
    params: Mapping[str, Any]
    workspace_id: str
    step_id: str
    sandbox_id: str
    # Whatever the caller of the step passed (run id, agent id, ...).
    context: Mapping[str, Any] = field(default_factory=dict)


RpcHandler = Callable[[RpcCall], Awaitable[Any]]


@dataclass(frozen=True)
class RpcTool:
    name: str
    description: str
    parameters: Mapping[str, Any]
    handler: RpcHandler

    def schema(self) -> dict[str, Any]:
        """What ``start`` carries in ``rpc_tools``."""
        return {"name": self.name, "description": self.description, "parameters": dict(self.parameters)}


class RpcRegistry:
    def __init__(self, tools: Iterable[RpcTool] = ()) -> None:
        self._tools: dict[str, RpcTool] = {}
        for tool in tools:
            self.register(tool)

    def register(self, tool: RpcTool) -> None:
        if tool.name in self._tools:
            raise ValueError(f"an RPC tool named {tool.name!r} is already registered")
        self._tools[tool.name] = tool

    def allowed(self, names: Iterable[str]) -> dict[str, RpcTool]:
        """The registered tools among ``names``: what one step may call."""
        return {name: self._tools[name] for name in names if name in self._tools}


async def answer(tool: RpcTool | None, call: RpcCall) -> tuple[Any, dict[str, str] | None]:
    """(result, None) or (None, error) for one call; a handler's bug is logged, never shown to the sandbox."""
    if tool is None:
        return None, {"code": "not_allowed", "message": f"this step may not call {call.method!r}"}
    try:
        return await tool.handler(call), None
    except RpcError as error:
        return None, {"code": error.code, "message": error.message}
    except Exception:
        logger.exception("RPC handler %s failed (step %s)", call.method, call.step_id)
        return None, {"code": "internal", "message": f"{call.method} failed on the platform's side"}
