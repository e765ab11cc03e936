"""The events a step sends its supervisor (docs/sandbox-channel.md, "Frames from the runtime")."""

from __future__ import annotations

import json
from typing import Any

from agent_runtime.channel import Channel
from agent_runtime.protocol import TEXT_PIECE, frame, truncate
from agent_runtime.workspace import Change


class Events:
    def __init__(self, channel: Channel) -> None:
        self.channel = channel

    async def output(self, text: str) -> None:
        for at in range(0, len(text), TEXT_PIECE):
            await self.channel.send(frame("output", text=text[at : at + TEXT_PIECE]))

    async def thinking(self, text: str) -> None:
        for at in range(0, len(text), TEXT_PIECE):
            await self.channel.send(frame("thinking", text=text[at : at + TEXT_PIECE]))

    async def tool_start(self, call_id: str, tool: str, args: str) -> None:
        await self.channel.send(frame("tool_start", call_id=call_id, tool=tool, args=truncate(args)))

    async def tool_end(self, call_id: str, tool: str, ok: bool, result: str, duration_ms: int) -> None:
        await self.channel.send(
            frame("tool_end", call_id=call_id, tool=tool, ok=ok, result=truncate(result), duration_ms=duration_ms)
        )

    def tool_cancelled(self, call_id: str, tool: str, duration_ms: int) -> None:
        """Sent without waiting: we are being cancelled (abort, timeout) and must not block."""
        try:
            self.channel.send_nowait(
                frame("tool_end", call_id=call_id, tool=tool, ok=False, result="cancelled", duration_ms=duration_ms)
            )
        except (ConnectionError, RuntimeError):
            pass

    async def file_changed(self, change: Change) -> None:
        await self.channel.send(frame("file_changed", path=change.path, change=change.change, size=change.size))

    async def usage(self, input_tokens: int, output_tokens: int, cache_read: int, cache_write: int) -> None:
        await self.channel.send(
            frame(
                "usage",
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cache_read_tokens=cache_read,
                cache_write_tokens=cache_write,
            )
        )

    async def log(self, level: str, message: str, **extra: Any) -> None:
        text = message if not extra else f"{message} {json.dumps(extra, default=str)}"
        await self.channel.send(frame("log", level=level, message=truncate(text)))
