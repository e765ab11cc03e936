"""The runtime's end of the channel: a unix socket (``MARID_CHANNEL=unix:/path``) or stdin/stdout (``stdio``).

Under ``stdio`` the frames own file descriptors 0 and 1; descriptor 1 is then pointed at stderr, so a stray
``print`` (ours, a library's) lands in the log instead of corrupting the channel.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

from agent_runtime.protocol import MAX_LINE, Frame, decode, encode


class ChannelError(RuntimeError):
    pass


class Channel:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader = reader
        self._writer = writer
        self._lock = asyncio.Lock()

    @classmethod
    async def connect(cls, address: str) -> Channel:
        if address.startswith("unix:"):
            reader, writer = await asyncio.open_unix_connection(address[len("unix:") :], limit=MAX_LINE + 1)
            return cls(reader, writer)
        if address == "stdio":
            return await cls._stdio()
        raise ChannelError(f"MARID_CHANNEL must be unix:/path or stdio, not {address!r}")

    @classmethod
    async def _stdio(cls) -> Channel:
        loop = asyncio.get_running_loop()
        out_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        reader = asyncio.StreamReader(limit=MAX_LINE + 1)
        await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(0, "rb", buffering=0))
        # A StreamReaderProtocol (with a reader that is never used) gives the writer flow control and a close
        # waiter, which StreamWriter needs.
        transport, protocol = await loop.connect_write_pipe(
            lambda: asyncio.StreamReaderProtocol(asyncio.StreamReader()), os.fdopen(out_fd, "wb", buffering=0)
        )
        writer = asyncio.StreamWriter(transport, protocol, reader, loop)
        return cls(reader, writer)

    async def send(self, message: Frame) -> None:
        line = encode(message)
        async with self._lock:
            self._writer.write(line)
            await self._writer.drain()

    def send_nowait(self, message: Frame) -> None:
        """Queue a frame without waiting for the socket (for cleanup paths that must not block or be cancelled)."""
        self._writer.write(encode(message))

    async def frames(self) -> AsyncIterator[Frame | None]:
        """Each frame received; None for a line that is not a frame of this protocol. Ends at end of stream."""
        while True:
            try:
                line = await self._reader.readuntil(b"\n")
            except asyncio.IncompleteReadError:
                return
            except asyncio.LimitOverrunError as error:
                raise ChannelError("the supervisor sent a line over 1 MiB") from error
            yield decode(line)

    async def close(self) -> None:
        try:
            if self._writer.can_write_eof():
                self._writer.write_eof()
            self._writer.close()
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
