"""The in-process fan-out behind :mod:`app.live.sse`: ONE ``XREAD BLOCK`` loop per process, bounded queues
per subscriber.

The process has one :class:`Hub`, which reads every stream that has subscribers and pushes each entry into
bounded per-subscriber queues. A subscriber that falls a whole queue behind is cut off (others are never
slowed): its stream ends with an ``event: gap`` telling the client to reconnect, which resumes from its last
id, so nothing is lost. Each entry becomes one shared :class:`Delivery`, rendered once per render function
for every connection that shows it.

Routes do not use this module directly: :func:`app.live.sse.event_stream` subscribes, replays and streams
(``from app.live.sse import Hub`` also works).
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import re
from collections import OrderedDict
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Any

from redis.asyncio import ConnectionPool, Redis
from redis.exceptions import NoPermissionError, RedisError

from app.live.bus import AUTHZ_EVENTS, Event, StreamPosition, Topic, decode_entry, format_stream_id, parse_stream_id
from app.live.permissions import required_permission

# Named after the public module, as before the split, so log filters and handlers keep matching.
logger = logging.getLogger("app.live.sse")

_HEARTBEAT_SLOTS = 16
_LINE_BREAK = re.compile(r"\r\n|\r|\n")

Render = Callable[[Event], str]


def format_data(text: str) -> str:
    """``data:`` lines for a (possibly multi-line) payload; the browser joins them back with newlines."""
    return "".join(f"data: {line}\n" for line in _LINE_BREAK.split(text))


class Delivery:
    """One stream entry as the hub hands it to every subscriber (shared, so render it once).

    ``permission`` is what a viewer needs to be sent it (``app.live.permissions``), looked up once here so
    that each subscriber's check is one set lookup, never a query or a render of its own.
    """

    __slots__ = ("topic", "id", "position", "event", "authz", "permission", "_bodies", "_frames")

    def __init__(self, topic: Topic, entry_id: str, position: StreamPosition, event: Event) -> None:
        self.topic = topic
        self.id = entry_id
        self.position = position
        self.event = event
        self.authz = event.type in AUTHZ_EVENTS
        self.permission = required_permission(event)
        self._bodies: dict[Render, bytes] = {}
        self._frames: dict[Render, bytes] = {}

    def body(self, render: Render) -> bytes:
        """``event:`` and ``data:`` lines plus the blank line; rendered once per render function."""
        body = self._bodies.get(render)
        if body is None:
            body = f"event: {self.event.type.value}\n{format_data(render(self.event))}\n".encode()
            self._bodies[render] = body
        return body

    def frame_alone(self, render: Render) -> bytes:
        """The whole message for a stream of this topic alone (its cursor is this id): built once."""
        frame = self._frames.get(render)
        if frame is None:
            frame = f"id: {self.topic.name}={self.id}\n".encode() + self.body(render)
            self._frames[render] = frame
        return frame


class Subscription:
    """A subscriber's side of the hub: a bounded queue of deliveries (``None`` wakes it for a heartbeat)."""

    __slots__ = ("workspace_id", "keys", "queue", "cut_off", "closed", "busy", "slot")

    def __init__(self, workspace_id: str, queue_size: int, slot: int) -> None:
        self.workspace_id = workspace_id
        self.keys: list[str] = []
        self.queue: asyncio.Queue[Delivery | None] = asyncio.Queue(queue_size)
        self.cut_off = False  # fell a whole queue behind; the hub dropped it
        self.closed = False  # the hub shut down
        self.busy = False  # got an event since its last heartbeat slot
        self.slot = slot  # which tick of the heartbeat cycle is its own


class _WatchedStream:
    __slots__ = ("workspace_id", "topic", "position", "subscribers")

    def __init__(self, workspace_id: str, topic: Topic, position: StreamPosition) -> None:
        self.workspace_id = workspace_id
        self.topic = topic
        self.position = position  # the last id dispatched (or the start): the hub reads after it
        self.subscribers: dict[Subscription, None] = {}


class Hub:
    """In-process fan-out: one ``XREAD BLOCK`` loop for every stream someone in this process watches.

    Create one per web process (``app.state.hub``); it starts with the first subscriber and ``close()``
    stops it. If Redis goes away, the loop retries with backoff and continues from where it was.
    """

    def __init__(
        self,
        redis: Redis,
        *,
        queue_size: int = 512,
        batch: int = 200,
        block_ms: int = 5000,
        heartbeat: float = 15.0,
        backoff: tuple[float, float] = (0.05, 5.0),
        recent: int = 4096,
    ) -> None:
        if queue_size < 2 * batch:
            # A batch is dispatched before subscribers get to run: a fast one must not look slow.
            raise ValueError("queue_size must be at least twice the batch")
        self.redis = redis
        self.queue_size = queue_size
        self.batch = batch
        self.block_ms = block_ms
        self.heartbeat = heartbeat
        self.backoff = backoff
        self.xread_calls = 0
        # Recent deliveries by (key, id), so that replays share them (and their rendering) with live ones.
        self._recent: OrderedDict[tuple[str, str], Delivery] = OrderedDict()
        self._recent_size = recent
        self._streams: dict[str, _WatchedStream] = {}
        self._subscriptions: dict[Subscription, None] = {}
        self._reader: Redis | None = None
        self._reader_pool: ConnectionPool | None = None
        self._reader_id: int | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._beat_task: asyncio.Task[None] | None = None
        self._waker: asyncio.Task[None] | None = None
        self._changed: asyncio.Event | None = None
        self._generation = 0  # bumped when a stream is added
        self._generation_read = 0  # the generation of the XREAD in flight
        self._can_unblock = True
        self._closed = False
        self._next_slot = 0
        # What CLIENT LIST shows for the reader connection: which process it is, and which hub in it.
        self.client_name = f"marid-hub:{os.getpid()}:{id(self):x}"

    # -- subscribers

    @property
    def streams(self) -> list[str]:
        """The keys being read."""
        return list(self._streams)

    @property
    def subscriber_count(self) -> int:
        return len(self._subscriptions)

    @property
    def reader_count(self) -> int:
        """Reader loops running (one per process by construction; tests check it)."""
        return int(self._reader_task is not None and not self._reader_task.done())

    def subscribe(self, workspace_id: str, starts: Mapping[Topic, str]) -> Subscription:
        """Watch the topics; a stream not yet read starts after ``starts[topic]`` (pass the current ends).

        Entries the hub dispatched before this call are not delivered: replay them with
        ``EventBus.read_since`` after subscribing, and skip ids already seen (``event_stream`` does).
        """
        if self._closed:
            raise RuntimeError("the hub is closed")
        self._start()
        self._next_slot = (self._next_slot + 1) % _HEARTBEAT_SLOTS
        subscription = Subscription(workspace_id, self.queue_size, self._next_slot)
        added = False
        for topic, start in starts.items():
            key = topic.key(workspace_id)
            stream = self._streams.get(key)
            if stream is None:
                stream = self._streams[key] = _WatchedStream(workspace_id, topic, parse_stream_id(start))
                added = True
            stream.subscribers[subscription] = None
            subscription.keys.append(key)
        self._subscriptions[subscription] = None
        if added:
            self._generation += 1
            assert self._changed is not None
            self._changed.set()
            if self._waker is None or self._waker.done():
                self._waker = asyncio.get_running_loop().create_task(self._wake_reader())
        return subscription

    def delivery(self, workspace_id: str, topic: Topic, entry_id: str, event: Event) -> Delivery:
        """The shared delivery of an entry read elsewhere (a replay): reconnecting tabs render it once."""
        cache_key = (topic.key(workspace_id), entry_id)
        delivery = self._recent.get(cache_key)
        if delivery is None:
            delivery = Delivery(topic, entry_id, parse_stream_id(entry_id), event)
            self._remember(cache_key, delivery)
        return delivery

    def _remember(self, cache_key: tuple[str, str], delivery: Delivery) -> None:
        self._recent[cache_key] = delivery
        if len(self._recent) > self._recent_size:
            self._recent.popitem(last=False)

    def unsubscribe(self, subscription: Subscription) -> None:
        """Stop delivering to ``subscription`` (idempotent); a stream nobody watches is no longer read."""
        self._subscriptions.pop(subscription, None)
        for key in subscription.keys:
            stream = self._streams.get(key)
            if stream is not None:
                stream.subscribers.pop(subscription, None)
                if not stream.subscribers:
                    del self._streams[key]
        subscription.keys = []

    async def close(self) -> None:
        """Stop reading and end every subscriber's stream (they are told to reconnect)."""
        self._closed = True
        if self._changed is not None:
            self._changed.set()
        tasks = [task for task in (self._reader_task, self._beat_task, self._waker) if task is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=2)
            if pending and self._reader_pool is not None:
                # A cancellation can be lost inside a Redis command; dropping the socket ends it for sure.
                await self._reader_pool.disconnect()
                await asyncio.wait(pending, timeout=2)
        for subscription in list(self._subscriptions):
            self.unsubscribe(subscription)
            subscription.closed = True
            with suppress(asyncio.QueueFull):
                subscription.queue.put_nowait(None)
        if self._reader is not None:
            await self._reader.aclose()
            self._reader = None
        if self._reader_pool is not None:
            await self._reader_pool.disconnect()
            self._reader_pool = None

    # -- the reader

    def _start(self) -> None:
        if self._reader_task is not None:
            return
        pool = self.redis.connection_pool
        kwargs: dict[str, Any] = {
            **pool.connection_kwargs,
            # Our own loop handles errors (it must learn the new client id after a reconnect).
            "retry": None,
            "retry_on_error": [],
            "retry_on_timeout": False,
            "decode_responses": False,
            # No socket timeout: redis-py then sends through asyncio.wait_for, which on Python 3.11 can swallow
            # a cancellation. The read is bounded by asyncio.timeout in the loop instead.
            "socket_timeout": None,
            "socket_keepalive": True,
            "client_name": self.client_name,
        }
        self._reader_pool = ConnectionPool(connection_class=pool.connection_class, max_connections=1, **kwargs)
        self._reader = Redis(connection_pool=self._reader_pool, single_connection_client=True)
        self._changed = asyncio.Event()
        loop = asyncio.get_running_loop()
        self._reader_task = loop.create_task(self._read_loop())
        self._beat_task = loop.create_task(self._beat())

    def _stopping(self) -> bool:
        return self._closed  # (a call, so that type checkers do not assume it cannot change across awaits)

    async def _read_loop(self) -> None:
        assert self._reader is not None and self._changed is not None
        delay = self.backoff[0]
        while not self._stopping():
            if not self._streams:
                self._changed.clear()
                await self._changed.wait()
                continue
            try:
                if self._reader_id is None:
                    self._reader_id = int(await self._reader.client_id())
                self._generation_read = self._generation
                streams = {key: format_stream_id(stream.position) for key, stream in self._streams.items()}
                if not streams:  # the last subscriber left while we were reconnecting
                    continue
                self.xread_calls += 1
                block = self.block_ms if self._can_unblock else min(self.block_ms, 250)
                # Redis answers a blocking XREAD within `block` ms; silence well beyond that is a dead connection.
                async with asyncio.timeout(block / 1000 + 10):
                    response = await self._reader.xread(streams, count=self.batch, block=block)  # type: ignore[arg-type]
                if response:
                    await self._dispatch(response)
                delay = self.backoff[0]
            except (RedisError, OSError) as exc:  # OSError includes TimeoutError
                self._reader_id = None
                if self._stopping():
                    return
                logger.warning("event hub: Redis read failed (%s); retrying in %.2f s", exc, delay)
                await asyncio.sleep(delay * random.uniform(0.8, 1.2))
                delay = min(delay * 2, self.backoff[1])
            except Exception:
                self._reader_id = None
                if self._stopping():
                    return
                logger.exception("event hub: unexpected error; retrying in %.2f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.backoff[1])

    async def _dispatch(self, response: Any) -> None:
        entries: list[tuple[StreamPosition, str, str, Any]] = []
        for raw_key, stream_entries in response.items() if isinstance(response, dict) else response:
            key = raw_key.decode() if isinstance(raw_key, bytes) else raw_key
            for raw_id, fields in stream_entries:
                entry_id = raw_id.decode() if isinstance(raw_id, bytes) else raw_id
                entries.append((parse_stream_id(entry_id), key, entry_id, fields))
        if len(response) > 1:
            entries.sort(key=lambda entry: entry[0])  # across streams in id order, as a replay would be
        for dispatched, (position, key, entry_id, fields) in enumerate(entries, 1):
            # Looked up per entry: the stream may have been dropped or re-added while we yielded.
            stream = self._streams.get(key)
            if stream is None or position <= stream.position:
                continue
            stream.position = position
            try:
                event = decode_entry(stream.workspace_id, stream.topic, fields)
            except ValueError as exc:
                logger.warning("event hub: skipping %s on %s: %s", entry_id, key, exc)
                continue
            delivery = Delivery(stream.topic, entry_id, position, event)
            self._remember((key, entry_id), delivery)
            overflowed: list[Subscription] = []
            for subscription in stream.subscribers:
                subscription.busy = True
                try:
                    subscription.queue.put_nowait(delivery)
                except asyncio.QueueFull:
                    overflowed.append(subscription)
            for subscription in overflowed:
                subscription.cut_off = True
                self.unsubscribe(subscription)
            if dispatched % self.batch == 0:
                await asyncio.sleep(0)  # let subscribers drain before the next batch

    async def _wake_reader(self) -> None:
        """Make a blocked XREAD pick up new streams now (``CLIENT UNBLOCK``) instead of at its timeout."""
        for _ in range(500):
            if self._generation_read >= self._generation or not self._can_unblock or self._closed:
                return
            if self._reader_id is not None:
                try:
                    if await self.redis.client_unblock(self._reader_id):
                        return
                except NoPermissionError:
                    logger.info("event hub: CLIENT UNBLOCK not permitted; new streams wait for the XREAD timeout")
                    self._can_unblock = False
                    return
                except RedisError:
                    return  # the reader's own retry loop copes with Redis going away
            # The XREAD may still be on its way to Redis: try again shortly.
            await asyncio.sleep(0.002)

    async def _beat(self) -> None:
        """Wake idle subscribers for a heartbeat, a slice at a time: thousands of streams never beat at once."""
        tick = 0
        while True:
            await asyncio.sleep(self.heartbeat / _HEARTBEAT_SLOTS)
            tick = (tick + 1) % _HEARTBEAT_SLOTS
            for subscription in self._subscriptions:
                if subscription.slot != tick:
                    continue
                if subscription.busy:  # it sent something within the last cycle: no need
                    subscription.busy = False
                elif subscription.queue.empty():
                    subscription.queue.put_nowait(None)
