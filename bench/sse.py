"""SSE fan-out: publish → last of N subscribers, and server memory per subscriber, against in-process queues.

    .venv/bin/python bench/sse.py [--subscribers 5000] [--events 100]

Starts a private Redis and a web process (uvicorn, one worker, a route built on ``app.live.sse.event_stream`` and
the process's ``Hub``), opens N concurrent SSE connections from this process (raw asyncio sockets), then
publishes events one at a time with XADD (``EventBus.publish``; the publish time is in the payload) and
measures how long until the last subscriber has the event. Server memory is VmRSS of the web process before
and after connecting the subscribers. The floor is the same fan-out over plain in-process asyncio queues
(one publisher, N consumer tasks), measured in the same run on the same event loop implementation (uvloop).

The web process calls ``app.live.sse.tune_gc_for_streaming()`` as ``marid web`` should (``--default-gc`` shows
what CPython's defaults cost). This process's own collector is paused while measuring: it is the
subscribers' side, not what is measured.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from app.embedded import EmbeddedRedis, free_port
from app.embedded.util import can_connect, stop_process
from app.live.bus import Event, EventBus, EventType, Topic
from app.tenants.permissions import permissions_of

WORKSPACE = "benchws00001"
TOPIC = Topic.activity()
ACTION = "settings.changed"  # an activity every role may see: each subscriber checks, each receives
VIEWER = permissions_of("viewer")
P99_TARGET_MS = 250.0
KB_TARGET = 40.0
MARKER = b'data-seq="'


def raise_nofile() -> int:
    """Lift the soft open-files limit to the hard one (the soft one is often 1024)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def render_fragment(event: Event) -> str:
    """A ~300-byte HTMX out-of-band fragment, like a dashboard activity row."""
    payload = event.payload
    return (
        '<tbody hx-swap-oob="afterbegin:#activity"><tr class="event event-activity" '
        f'data-seq="{payload["seq"]}"><td class="when"><time datetime="{event.at.isoformat()}">now</time></td>'
        f'<td class="what">{payload["text"]}</td><td class="who"><a href="/agents/finn">finn</a></td></tr></tbody>'
    )


# ------------------------------------------------------------------------------------------- web process


def serve(port: int, redis_url: str, default_gc: bool) -> None:
    import uvicorn
    from redis.asyncio import Redis
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    from app.live.sse import Hub, event_stream, tune_gc_for_streaming

    raise_nofile()
    if not default_gc:
        tune_gc_for_streaming()
    pauses: list[tuple[int, float]] = []  # (generation, ms) of each collection since the last reset
    gc_started = [0.0]

    def on_gc(phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            gc_started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], (time.perf_counter() - gc_started[0]) * 1000))

    gc.callbacks.append(on_gc)
    state: dict[str, Any] = {}

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        redis = Redis.from_url(redis_url)
        state["bus"], state["hub"] = EventBus(redis), Hub(redis)
        yield
        await state["hub"].close()
        await redis.aclose()

    async def allowed() -> bool:
        return True

    async def events(request: Request) -> Response:
        # Filtered by a viewer's permissions, as every workspace stream is (app.live.permissions).
        hub, bus = state["hub"], state["bus"]
        return await event_stream(request, hub, bus, WORKSPACE, [TOPIC], allowed, render_fragment, permissions=VIEWER)

    async def gc_pauses(request: Request) -> Response:
        """GET: the collections since the last POST (which resets the list)."""
        if request.query_params.get("full"):  # how long one full collection takes with every stream open
            started = time.perf_counter()
            gc.collect()
            return JSONResponse((time.perf_counter() - started) * 1000)
        report = JSONResponse([list(pause) for pause in pauses])
        if request.method == "POST":
            pauses.clear()
        return report

    app = Starlette(
        routes=[Route("/events", events), Route("/gc", gc_pauses, methods=["GET", "POST"])], lifespan=lifespan
    )
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=port,
        loop="uvloop",
        http="httptools",
        ws="none",
        backlog=8192,
        access_log=False,
        log_level="warning",
        timeout_graceful_shutdown=1,
    )


def rss_kb(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


# ------------------------------------------------------------------------------------------- subscribers


@dataclass
class Fanout:
    """Counts, per event, how many subscribers have it; notes when the last one does."""

    subscribers: int
    counts: dict[int, int] = field(default_factory=dict)
    last_at: dict[int, float] = field(default_factory=dict)
    done: dict[int, asyncio.Event] = field(default_factory=dict)
    ready: int = 0
    all_ready: asyncio.Event = field(default_factory=asyncio.Event)
    gaps: int = 0
    closed: int = 0

    def expect(self, seq: int) -> asyncio.Event:
        self.counts[seq] = 0
        self.done[seq] = asyncio.Event()
        return self.done[seq]

    def received(self, seq: int) -> None:
        count = self.counts.get(seq, 0) + 1
        self.counts[seq] = count
        if count == self.subscribers:
            self.last_at[seq] = time.perf_counter()
            self.done[seq].set()


class Subscriber(asyncio.Protocol):
    """One SSE connection on a raw socket: finds ``data-seq="N"`` in the bytes as they come."""

    def __init__(self, fanout: Fanout, request: bytes) -> None:
        self.fanout = fanout
        self.request = request
        self.tail = b""
        self.seen = -1
        self.ready = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        cast(asyncio.Transport, transport).write(self.request)  # (uvloop's transports are not subclasses)

    def data_received(self, data: bytes) -> None:
        buffer = self.tail + data
        if not self.ready and b"retry:" in buffer:
            self.ready = True
            self.fanout.ready += 1
            if self.fanout.ready == self.fanout.subscribers:
                self.fanout.all_ready.set()
        start = 0
        while (found := buffer.find(MARKER, start)) >= 0:
            end = buffer.find(b'"', found + len(MARKER))
            if end < 0:
                break
            seq = int(buffer[found + len(MARKER) : end])
            if seq > self.seen:
                self.seen = seq
                self.fanout.received(seq)
            start = end
        if b"event: gap" in buffer:
            self.fanout.gaps += 1
        self.tail = buffer[-48:]

    def connection_lost(self, exc: Exception | None) -> None:
        self.fanout.closed += 1


async def connect_all(port: int, fanout: Fanout, batch: int = 250) -> list[asyncio.Transport]:
    loop = asyncio.get_running_loop()
    request = (
        f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: text/event-stream\r\n"
        "Cache-Control: no-cache\r\n\r\n"
    ).encode()
    transports: list[asyncio.Transport] = []
    for first in range(0, fanout.subscribers, batch):
        count = min(batch, fanout.subscribers - first)
        made = await asyncio.gather(
            *(loop.create_connection(lambda: Subscriber(fanout, request), "127.0.0.1", port) for _ in range(count))
        )
        transports += [transport for transport, _ in made]
    await asyncio.wait_for(fanout.all_ready.wait(), 120)
    return transports


# ------------------------------------------------------------------------------------------- measuring


async def http(port: int, method: str, path: str) -> bytes:
    """A one-shot HTTP/1.1 request to the web process; returns the body."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".encode()
    )
    response = await reader.read()
    writer.close()
    return response.split(b"\r\n\r\n", 1)[1]


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, int(round(p / 100 * len(ordered) + 0.5)) - 1))
    return ordered[rank]


async def measure(
    publish: Callable[[int], Awaitable[float]], fanout: Fanout, events: int, warmup: int = 5
) -> list[float]:
    """Latency (ms) from publish start to the last subscriber, one event at a time."""
    latencies: list[float] = []
    for seq in range(warmup + events):
        done = fanout.expect(seq)
        started = await publish(seq)
        await asyncio.wait_for(done.wait(), 30)
        if seq >= warmup:
            latencies.append((fanout.last_at[seq] - started) * 1000)
        await asyncio.sleep(0.02)  # let stragglers' sockets drain; events are apart, as in real life
    return latencies


async def sse_run(port: int, web_pid: int, redis_url: str, subscribers: int, events: int) -> dict[str, Any]:
    from redis.asyncio import Redis

    redis = Redis.from_url(redis_url)
    transports: list[asyncio.Transport] = []
    try:
        bus = EventBus(redis)
        # Warm the web process up (imports, first request, the hub's reader), then take its baseline.
        warm = Fanout(1)
        warm_transports = await connect_all(port, warm)
        warm_transports[0].close()
        await asyncio.sleep(1.0)
        rss_before = rss_kb(web_pid)

        await http(port, "POST", "/gc")  # count collections from here: connecting, then the events
        fanout = Fanout(subscribers)
        started = time.perf_counter()
        transports = await connect_all(port, fanout)
        connect_seconds = time.perf_counter() - started
        await asyncio.sleep(1.0)
        rss_after = rss_kb(web_pid)

        async def publish(seq: int) -> float:
            at = time.perf_counter()
            payload = {"seq": seq, "ts": time.time(), "text": f"Step {seq} of the run is done", "action": ACTION}
            await bus.publish(WORKSPACE, TOPIC, EventType.ACTIVITY, payload)
            return at

        latencies = await measure(publish, fanout, events)
        gc_pauses = json.loads(await http(port, "GET", "/gc"))
        full_gc_ms = json.loads(await http(port, "GET", "/gc?full=1"))
        return {
            "full_gc_ms": full_gc_ms,
            "gc_pauses": gc_pauses,
            "latencies": latencies,
            "rss_before": rss_before,
            "rss_after": rss_after,
            "rss_end": rss_kb(web_pid),
            "connect_seconds": connect_seconds,
            "gaps": fanout.gaps,
            "lost": fanout.closed,
        }
    finally:
        for transport in transports:
            transport.close()
        await redis.aclose()


def run_sse(subscribers: int, events: int, default_gc: bool) -> dict[str, Any]:
    """Private Redis + web process around :func:`sse_run`."""
    import uvloop

    with tempfile.TemporaryDirectory(prefix="marid-bench-") as tmp:
        redis_server = EmbeddedRedis(Path(tmp) / "redis", durable=False)
        redis_server.start()
        port = free_port()
        argv = [sys.executable, __file__, "--serve", "--port", str(port), "--redis-url", redis_server.url]
        web = subprocess.Popen(argv + (["--default-gc"] if default_gc else []))
        try:
            deadline = time.monotonic() + 30
            while not can_connect(port):
                if web.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the web process did not start")
                time.sleep(0.05)
            return uvloop.run(sse_run(port, web.pid, redis_server.url, subscribers, events))
        finally:
            stop_process(web)
            redis_server.stop()


async def floor_run(subscribers: int, events: int) -> list[float]:
    """The same fan-out with nothing but asyncio: one publisher, N bounded queues, N consumer tasks."""
    fanout = Fanout(subscribers)
    queues: list[asyncio.Queue[int | None]] = [asyncio.Queue(512) for _ in range(subscribers)]

    async def consume(queue: asyncio.Queue[int | None]) -> None:
        while (seq := await queue.get()) is not None:
            fanout.received(seq)

    consumers = [asyncio.create_task(consume(queue)) for queue in queues]

    async def publish(seq: int) -> float:
        at = time.perf_counter()
        for queue in queues:
            queue.put_nowait(seq)
        return at

    try:
        return await measure(publish, fanout, events)
    finally:
        for queue in queues:
            queue.put_nowait(None)
        await asyncio.gather(*consumers)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--subscribers", type=int, default=5000)
    parser.add_argument("--events", type=int, default=100)
    parser.add_argument(
        "--default-gc", action="store_true", help="leave the web process's garbage collector at CPython's defaults"
    )
    parser.add_argument("--series", action="store_true", help="also print every event's latency")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--redis-url", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.port, args.redis_url, args.default_gc)
        return

    nofile = raise_nofile()
    if nofile < args.subscribers + 100:
        sys.exit(f"open-files limit {nofile} is too low for {args.subscribers} subscribers")
    import uvloop

    # The subscribers' side is not what is measured: keep its garbage collector from pausing it mid-event.
    gc.collect()
    gc.disable()
    sse = run_sse(args.subscribers, args.events, args.default_gc)
    gc.collect()
    floor = uvloop.run(floor_run(args.subscribers, args.events))
    gc.enable()

    report(args, sse, floor)


def report(args: argparse.Namespace, sse: dict[str, Any], floor: list[float]) -> None:
    lat = sse["latencies"]
    n = args.subscribers
    per_sub_kb = (sse["rss_after"] - sse["rss_before"]) / n
    full = [ms for generation, ms in sse["gc_pauses"] if generation == 2]
    young = [ms for generation, ms in sse["gc_pauses"] if generation < 2]
    gc_mode = "CPython defaults" if args.default_gc else "tune_gc_for_streaming()"
    print()
    print(f"SSE fan-out: {n:,} subscribers, {args.events} events, {os.cpu_count()} cores, uvloop + httptools")
    print(f"(connected in {sse['connect_seconds']:.1f} s; gap events: {sse['gaps']}; connections lost: {sse['lost']})")
    print()
    print(f"{'publish → last subscriber (ms)':<36}{'p50':>9}{'p90':>9}{'p99':>9}{'max':>9}")
    for name, samples in (("Marid SSE: XADD → hub → HTTP", lat), ("floor: in-process asyncio queues", floor)):
        print(
            f"{name:<36}{percentile(samples, 50):>9.1f}{percentile(samples, 90):>9.1f}"
            f"{percentile(samples, 99):>9.1f}{max(samples):>9.1f}"
        )
    ratios = [percentile(lat, p) / percentile(floor, p) for p in (50, 90, 99)] + [max(lat) / max(floor)]
    print(f"{'ratio SSE / floor':<36}" + "".join(f"{ratio:>8.1f}x" for ratio in ratios))
    print()
    print(f"{'web process':<36}{'':>9}")
    print(f"{'  VmRSS before subscribers':<36}{sse['rss_before'] / 1024:>6.1f} MB")
    print(f"{'  VmRSS with subscribers':<36}{sse['rss_after'] / 1024:>6.1f} MB")
    print(f"{'  VmRSS after the events':<36}{sse['rss_end'] / 1024:>6.1f} MB")
    print(f"{'  per subscriber':<36}{per_sub_kb:>6.1f} KB")
    print(f"{'  garbage collector':<36}{gc_mode}")
    print(
        f"{'  GC while connecting + events':<36}{len(young)} young ({sum(young):.0f} ms), "
        f"{len(full)} full ({sum(full):.0f} ms, longest {max(full, default=0):.0f} ms)"
    )
    print(f"{'  one full collection, streams open':<36}{sse['full_gc_ms']:>6.0f} ms")
    if args.series:
        print("per event (ms):", " ".join(f"{ms:.0f}" for ms in lat))
    print()
    p99 = percentile(lat, 99)
    print(f"target p99 <= {P99_TARGET_MS:.0f} ms: {'met' if p99 <= P99_TARGET_MS else 'MISSED'} ({p99:.1f} ms)")
    verdict = "met" if per_sub_kb <= KB_TARGET else "MISSED"
    print(f"target <= {KB_TARGET:.0f} KB per subscriber: {verdict} ({per_sub_kb:.1f} KB)")


if __name__ == "__main__":
    main()
