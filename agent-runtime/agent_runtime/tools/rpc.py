"""A platform tool served by the supervisor: its schema comes in ``start``, each call is an RPC."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agent_runtime.rpc import RpcClient, RpcFailed
from agent_runtime.step import RpcToolSpec
from agent_runtime.tools.base import JsonObject, ToolResult, cap


class RpcTool:
    def __init__(self, spec: RpcToolSpec, client: RpcClient) -> None:
        self.name = spec.name
        self.description = spec.description
        self.parameters: JsonObject = spec.parameters
        self.client = client

    async def run(self, args: Mapping[str, Any]) -> ToolResult:
        try:
            result = await self.client.call(self.name, dict(args))
        except RpcFailed as error:
            return ToolResult.error(f"{error.code}: {error.message}")
        text = result if isinstance(result, str) else json.dumps(result, ensure_ascii=False)
        return ToolResult(True, cap(text))
