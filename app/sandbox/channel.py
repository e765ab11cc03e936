"""The supervisor's end of one sandbox's channel: a unix socket it listens on, framed and capped.

One connection is accepted (the runtime's); the listening socket closes behind it. A pump task reads lines and
puts what it finds in the session's inbox: validated frames, unknown types, a violation (and then nothing more),
or the end of the stream. The caps (line size, frames per second, bytes per step) are checked here, before
any frame is acted on, so a flooding sandbox costs the worker little.

Writes never wait on the sandbox from the session loop (``write``: buffered); tasks that stream to it (LLM
answers, RPC results) use ``send``, which waits for the socket to drain, so a runtime that stops reading slows
only its own streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from app.sandbox.frames import MAX_LINE, Frame, ProtocolError, RuntimeFrame, UnknownFrame, encode, parse
from app.sandbox.runner import CHANNEL_SOCKET

# A unix socket path must fit sockaddr_un.sun_path (108 bytes on Linux, the final NUL included).
MAX_SOCKET_PATH = 107


@dataclass(frozen=True)
class ChannelLimits:
    """What one sandbox may send. Exceeding a cap ends the step (docs/sandbox-channel.md, "Transport")."""

    # Token bucket: sustained frames per second, and the burst above it.
    frames_per_second: float = 500.0
    frame_burst: int = 2000
    # Everything read from the sandbox during one step (LLM request bodies re-send the conversation each turn).
    max_bytes: int = 256 * 1024 * 1024
    max_pending_rpcs: int = 16
    max_pending_llm_requests: int = 4
    # One LLM request body, assembled from its frames.
    max_llm_request_bytes: int = 32 * 1024 * 1024


@dataclass(frozen=True)
class Violation:
    reason: str


@dataclass(frozen=True)
class Closed:
    """The runtime closed its end (it exited, or crashed)."""


InboxItem = RuntimeFrame | UnknownFrame | Violation | Closed


class _Bucket:
    def __init__(self, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = float(burst)
        self.tokens = float(burst)
        self.at = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


class Connection:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.bytes_read = 0

    def write(self, message: Frame) -> None:
        """Queue a frame; never waits (the session loop must not block on a sandbox that does not read)."""
        if not self.writer.is_closing():
            self.writer.write(encode(message))

    async def send(self, message: Frame) -> None:
        """Queue a frame and wait until the socket takes it (backpressure for streams)."""
        self.write(message)
        with contextlib.suppress(ConnectionError):
            await self.writer.drain()

    async def pump(self, put: Callable[[InboxItem], None], limits: ChannelLimits) -> None:
        bucket = _Bucket(limits.frames_per_second, limits.frame_burst)
        while True:
            try:
                line = await self.reader.readuntil(b"\n")
            except asyncio.LimitOverrunError:
                put(Violation(f"the runtime sent a line longer than {MAX_LINE // (1024 * 1024)} MiB"))
                return
            except (asyncio.IncompleteReadError, ConnectionError):
                put(Closed())
                return
            self.bytes_read += len(line)
            if self.bytes_read > limits.max_bytes:
                put(Violation(f"the runtime sent more than {limits.max_bytes} bytes in one step"))
                return
            if not bucket.take():
                put(Violation(f"the runtime flooded the channel (over {limits.frames_per_second:g} frames a second)"))
                return
            try:
                put(parse(line))
            except ProtocolError as error:
                put(Violation(str(error)))
                return

    async def close(self) -> None:
        with contextlib.suppress(ConnectionError, OSError, TimeoutError):
            self.writer.close()
            await asyncio.wait_for(self.writer.wait_closed(), 2)


class Listener:
    """The unix socket in ``channel_dir`` that the sandbox's runtime connects to; the first connection wins."""

    def __init__(self, channel_dir: Path) -> None:
        self.path = channel_dir / CHANNEL_SOCKET
        if len(os.fsencode(self.path)) > MAX_SOCKET_PATH:
            raise ValueError(f"the channel socket path is too long for a unix socket: {self.path}")
        self.connected: asyncio.Future[Connection] = asyncio.get_running_loop().create_future()
        self._server: asyncio.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._accept, path=str(self.path), limit=MAX_LINE + 1)
        # The runtime may run as another uid. Who reaches the socket is decided by the folder's permissions: the
        # supervisor makes it 0700, and a runner whose sandbox runs as another uid opens it to that uid alone.
        os.chmod(self.path, 0o666)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if self.connected.done():
            writer.close()
            return
        self.connected.set_result(Connection(reader, writer))
        self.stop_listening()

    def stop_listening(self) -> None:
        if self._server is not None:
            self._server.close()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()
