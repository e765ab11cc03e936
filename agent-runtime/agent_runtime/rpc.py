"""Platform tools as RPCs: ``rpc_request`` out, the matching ``rpc_response`` back."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

from agent_runtime.channel import Channel
from agent_runtime.protocol import Frame, frame


class RpcFailed(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class RpcClient:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel
        self._ids = itertools.count(1)
        self._pending: dict[str, asyncio.Future[Frame]] = {}

    async def call(self, method: str, params: dict[str, Any]) -> Any:
        """The handler's result; raises RpcFailed with the supervisor's error."""
        request_id = f"rpc-{next(self._ids)}"
        answer: asyncio.Future[Frame] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = answer
        try:
            await self.channel.send(frame("rpc_request", id=request_id, method=method, params=params))
            response = await answer
        finally:
            self._pending.pop(request_id, None)
        error = response.get("error")
        if error is not None:
            if isinstance(error, dict):
                raise RpcFailed(str(error.get("code", "error")), str(error.get("message", "")))
            raise RpcFailed("error", str(error))
        return response.get("result")

    def deliver(self, message: Frame) -> None:
        answer = self._pending.get(str(message.get("id")))
        if answer is not None and not answer.done():
            answer.set_result(message)
