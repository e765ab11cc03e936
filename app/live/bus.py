"""The live event bus: typed events on Redis Streams, one stream per workspace topic.

Postgres is the truth; these streams are the nervous system. Every state change worth showing live is
published here as an :class:`Event` with an id (the Redis stream id), so any reader can resume from the last
id it saw and lose nothing (``read_since``). The in-process fan-out to browser tabs lives in ``app.live.sse``
(its hub in ``app.live.hub``).

Keys always carry the workspace id and are only ever built from validated parts::

    marid:ws:{workspace_id}:activity          the workspace's activity feed (dashboard)
    marid:ws:{workspace_id}:control           membership / authorization changes (not shown, re-checked)
    marid:ws:{workspace_id}:run:{run_id}      one pipeline run
    marid:ws:{workspace_id}:swarm:{swarm_id}  one swarm
    marid:ws:{workspace_id}:session:{id}      one agent or chat session
    marid:ws:{workspace_id}:usage             LLM calls through the gateway, budget warnings

Each topic kind has its own retention: ``XADD MAXLEN ~`` caps the stream length, and per-run/swarm/session
streams also expire some time after their last event so finished runs do not keep keys forever.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import pydantic_core
from pydantic import BaseModel, ConfigDict
from redis.asyncio import Redis
from redis.exceptions import ResponseError
from redis.typing import EncodableT, FieldT

from app.db import schema_for

logger = logging.getLogger(__name__)

KEY_PREFIX = "marid:ws:"
# Topic ids (run, swarm and session ids) reach keys and SSE cursors: no ':', ';', '=', spaces, globs or braces.
_TOPIC_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
_STREAM_ID = re.compile(r"([0-9]{1,20})(?:-([0-9]{1,20}))?")
# Both parts of a Redis stream id are unsigned 64-bit numbers; Redis refuses anything larger.
_MAX_PART = 2**64 - 1
MAX_STREAM_POSITION = (_MAX_PART, _MAX_PART)

StreamPosition = tuple[int, int]
"""A stream id as comparable numbers: ``"1700000000000-3"`` is ``(1700000000000, 3)``."""


class EventType(StrEnum):
    """Event names. The run/step/tool/container names are DjinnBot's contract; keep them as they are."""

    # Runs and steps (DjinnBot ``types/events.ts``)
    RUN_CREATED = "RUN_CREATED"
    STEP_QUEUED = "STEP_QUEUED"
    STEP_STARTED = "STEP_STARTED"
    STEP_OUTPUT = "STEP_OUTPUT"
    STEP_THINKING = "STEP_THINKING"
    STEP_COMPLETE = "STEP_COMPLETE"
    STEP_FAILED = "STEP_FAILED"
    STEP_RETRYING = "STEP_RETRYING"
    STEP_CANCELLED = "STEP_CANCELLED"
    STEP_ERROR = "STEP_ERROR"
    LOOP_ITEM_COMPLETE = "LOOP_ITEM_COMPLETE"
    LOOP_ITEM_FAILED = "LOOP_ITEM_FAILED"
    RUN_COMPLETE = "RUN_COMPLETE"
    RUN_FAILED = "RUN_FAILED"
    RUN_DELETED = "RUN_DELETED"
    RUN_STATUS_CHANGED = "RUN_STATUS_CHANGED"
    RUN_UPDATED = "RUN_UPDATED"
    RUNS_BULK_DELETED = "RUNS_BULK_DELETED"
    STEP_UPDATED = "STEP_UPDATED"
    # Agents and tools
    AGENT_MESSAGE = "AGENT_MESSAGE"
    HUMAN_INTERVENTION = "HUMAN_INTERVENTION"
    SLACK_MESSAGE = "SLACK_MESSAGE"
    AGENT_STATE = "AGENT_STATE"
    AGENT_STATE_CHANGED = "AGENT_STATE_CHANGED"
    AGENT_THINKING = "AGENT_THINKING"
    TOOL_CALL_START = "TOOL_CALL_START"
    TOOL_CALL_END = "TOOL_CALL_END"
    TOOL_STARTED = "TOOL_STARTED"
    TOOL_COMPLETE = "TOOL_COMPLETE"
    FILE_CHANGED = "FILE_CHANGED"
    COMMIT_FAILED = "COMMIT_FAILED"
    # Sandboxes (DjinnBot's container names, kept for compatibility)
    CONTAINER_CREATED = "CONTAINER_CREATED"
    CONTAINER_STARTING = "CONTAINER_STARTING"
    CONTAINER_READY = "CONTAINER_READY"
    CONTAINER_STOPPING = "CONTAINER_STOPPING"
    CONTAINER_DESTROYED = "CONTAINER_DESTROYED"
    CONTAINER_CRASHED = "CONTAINER_CRASHED"
    CONTAINER_STOPPED = "CONTAINER_STOPPED"
    CONTAINER_CREATE_FAILED = "CONTAINER_CREATE_FAILED"
    CONTAINER_START_ERROR = "CONTAINER_START_ERROR"
    # Projects, tasks and the rest of DjinnBot's global stream
    PROJECT_CREATED = "PROJECT_CREATED"
    PROJECT_UPDATED = "PROJECT_UPDATED"
    PROJECT_DELETED = "PROJECT_DELETED"
    TASK_CREATED = "TASK_CREATED"
    TASK_MOVED = "TASK_MOVED"
    TASK_CLAIMED = "TASK_CLAIMED"
    TASK_STATUS_CHANGED = "TASK_STATUS_CHANGED"
    TASK_PR_OPENED = "TASK_PR_OPENED"
    TASK_EXECUTION_STARTED = "TASK_EXECUTION_STARTED"
    TASK_EXECUTION_COMPLETED = "TASK_EXECUTION_COMPLETED"
    TASK_EXECUTION_FAILED = "TASK_EXECUTION_FAILED"
    DEPENDENCY_ADDED = "DEPENDENCY_ADDED"
    DEPENDENCY_REMOVED = "DEPENDENCY_REMOVED"
    AGENT_ASSIGNED = "AGENT_ASSIGNED"
    PULSE_TRIGGERED = "PULSE_TRIGGERED"
    # Swarms (DjinnBot's ``swarm:task_started`` ... progress events, in our spelling)
    SWARM_LAUNCHED = "SWARM_LAUNCHED"
    SWARM_TASK_STARTED = "SWARM_TASK_STARTED"
    SWARM_TASK_COMPLETED = "SWARM_TASK_COMPLETED"
    SWARM_TASK_FAILED = "SWARM_TASK_FAILED"
    SWARM_TASK_SKIPPED = "SWARM_TASK_SKIPPED"
    SWARM_COMPLETED = "SWARM_COMPLETED"
    SWARM_FAILED = "SWARM_FAILED"
    # Agent and chat sessions
    SESSION_OUTPUT = "SESSION_OUTPUT"
    SESSION_THINKING = "SESSION_THINKING"
    SESSION_TOOL_START = "SESSION_TOOL_START"
    SESSION_TOOL_END = "SESSION_TOOL_END"
    SESSION_TURN_END = "SESSION_TURN_END"
    SESSION_STATUS = "SESSION_STATUS"
    SESSION_COMPLETE = "SESSION_COMPLETE"
    SESSION_ERROR = "SESSION_ERROR"
    # Marid's own
    ACTIVITY = "ACTIVITY"
    TOAST = "TOAST"
    MEMBER_ADDED = "MEMBER_ADDED"
    MEMBER_REMOVED = "MEMBER_REMOVED"
    MEMBER_ROLE_CHANGED = "MEMBER_ROLE_CHANGED"
    WORKSPACE_DELETED = "WORKSPACE_DELETED"
    # The LLM gateway: one per call (what it cost), and a budget crossing 80 % of its cap
    LLM_CALL = "LLM_CALL"
    LLM_BUDGET_WARNING = "LLM_BUDGET_WARNING"


AUTHZ_EVENTS: frozenset[EventType] = frozenset(
    {EventType.MEMBER_REMOVED, EventType.MEMBER_ROLE_CHANGED, EventType.WORKSPACE_DELETED}
)
"""Events after which every open stream of the workspace re-checks that its viewer may still see it."""


class TopicKind(StrEnum):
    ACTIVITY = "activity"
    CONTROL = "control"
    RUN = "run"
    SWARM = "swarm"
    SESSION = "session"
    # LLM calls and budget warnings (the usage pages); apart from the activity feed, which shows changes.
    USAGE = "usage"


WORKSPACE_WIDE: frozenset[TopicKind] = frozenset({TopicKind.ACTIVITY, TopicKind.CONTROL, TopicKind.USAGE})


@dataclass(frozen=True, slots=True)
class Topic:
    """What a stream is about: the workspace's activity or control feed, or one run, swarm or session.

    A topic never contains the workspace id; :meth:`key` combines the two (both validated).
    """

    kind: TopicKind
    id: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", TopicKind(self.kind))
        if self.kind in WORKSPACE_WIDE:
            if self.id is not None:
                raise ValueError(f"topic {self.kind} takes no id")
        elif self.id is None or not _TOPIC_ID.fullmatch(self.id):
            raise ValueError(f"not a {self.kind} id: {self.id!r}")

    @classmethod
    def activity(cls) -> Topic:
        return cls(TopicKind.ACTIVITY)

    @classmethod
    def control(cls) -> Topic:
        return cls(TopicKind.CONTROL)

    @classmethod
    def usage(cls) -> Topic:
        return cls(TopicKind.USAGE)

    @classmethod
    def run(cls, run_id: str) -> Topic:
        return cls(TopicKind.RUN, run_id)

    @classmethod
    def swarm(cls, swarm_id: str) -> Topic:
        return cls(TopicKind.SWARM, swarm_id)

    @classmethod
    def session(cls, session_id: str) -> Topic:
        return cls(TopicKind.SESSION, session_id)

    @classmethod
    def parse(cls, name: str) -> Topic:
        """The inverse of :attr:`name`: ``"activity"``, ``"run:run_1a2b"``...; raises ValueError otherwise."""
        kind, _, topic_id = name.partition(":")
        try:
            return cls(TopicKind(kind), topic_id if _ else None)
        except ValueError:
            raise ValueError(f"not a topic: {name!r}") from None

    @property
    def name(self) -> str:
        return self.kind.value if self.id is None else f"{self.kind.value}:{self.id}"

    def key(self, workspace_id: str) -> str:
        """The Redis key of this topic's stream in a workspace; refuses a malformed workspace id."""
        check_workspace_id(workspace_id)
        return f"{KEY_PREFIX}{workspace_id}:{self.name}"

    def __str__(self) -> str:
        return self.name


@dataclass(frozen=True, slots=True)
class Retention:
    """How much of a topic's stream Redis keeps: about ``maxlen`` entries, for ``ttl_seconds`` after the last."""

    maxlen: int
    ttl_seconds: int | None = None

    def __post_init__(self) -> None:
        if self.maxlen < 1 or (self.ttl_seconds is not None and self.ttl_seconds < 1):
            raise ValueError("retention needs maxlen >= 1 and a positive ttl")


WEEK = 7 * 24 * 3600
DEFAULT_RETENTION: Mapping[TopicKind, Retention] = {
    TopicKind.ACTIVITY: Retention(maxlen=10_000),
    TopicKind.CONTROL: Retention(maxlen=1_000),
    TopicKind.RUN: Retention(maxlen=5_000, ttl_seconds=WEEK),
    TopicKind.SWARM: Retention(maxlen=5_000, ttl_seconds=WEEK),
    TopicKind.SESSION: Retention(maxlen=2_000, ttl_seconds=WEEK),
    TopicKind.USAGE: Retention(maxlen=5_000),
}


class Event(BaseModel):
    """One published event. ``at`` is when it was published (UTC, millisecond precision)."""

    model_config = ConfigDict(frozen=True)

    type: EventType
    workspace_id: str
    topic: Topic
    payload: dict[str, Any]
    at: datetime


def check_workspace_id(workspace_id: str) -> str:
    """Refuse anything but a well-formed workspace id (the rule of ``app.db.schema_for``)."""
    schema_for(workspace_id)
    # schema_for's pattern ends in ``$``, which also matches before a trailing newline: be exact here.
    if not workspace_id.isascii() or len(workspace_id) != 12:
        raise ValueError(f"not a workspace id: {workspace_id!r}")
    return workspace_id


def parse_stream_id(value: str) -> StreamPosition:
    """``"1700000000000-3"`` (or ``"0"``) as numbers; raises ValueError for anything else.

    Twenty digits can exceed 64 bits (``99999999999999999999``): such an id passed to Redis fails the command
    (``ERR Invalid stream ID``) after a stream has started, so it is refused here, with the other bad ids.
    """
    match = _STREAM_ID.fullmatch(value)
    if match is None:
        raise ValueError(f"not a stream id: {value!r}")
    position = int(match[1]), int(match[2] or 0)
    if position[0] > _MAX_PART or position[1] > _MAX_PART:
        raise ValueError(f"stream id out of range: {value!r}")
    return position


def format_stream_id(position: StreamPosition) -> str:
    return f"{position[0]}-{position[1]}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_entry(workspace_id: str, topic: Topic, fields: Mapping[Any, Any]) -> Event:
    """Build the :class:`Event` of one stream entry (fields ``type``, ``at`` in ms, ``data`` JSON).

    Raises ValueError for an entry this code does not understand (say, a type added by a newer release).
    """
    values = {_text(k): v for k, v in fields.items()}
    try:
        payload = pydantic_core.from_json(values["data"])
        at = datetime.fromtimestamp(int(values["at"]) / 1000, UTC)
        event_type = EventType(_text(values["type"]))
    except (KeyError, TypeError) as exc:
        raise ValueError(f"malformed event entry: {exc!r}") from exc
    if not isinstance(payload, dict):
        raise ValueError("event payload is not an object")
    # Trusted: the fields were validated when the event was published.
    return Event.model_construct(type=event_type, workspace_id=workspace_id, topic=topic, payload=payload, at=at)


def merge_by_id(entries: Iterable[tuple[Topic, str, Event]]) -> list[tuple[Topic, str, Event]]:
    """Order entries of several streams by stream id (ids of one Redis server share its clock).

    Two streams can hand out the same id; such ties keep their input order (sorting is stable).
    """
    return sorted(entries, key=lambda entry: parse_stream_id(entry[1]))


class EventBus:
    """Publishes events and reads them back from an id. Stateless; one per process is plenty."""

    def __init__(
        self,
        redis: Redis,
        *,
        retention: Mapping[TopicKind, Retention] | None = None,
        max_payload_bytes: int = 256 * 1024,
    ) -> None:
        self.redis = redis
        self.retention = {**DEFAULT_RETENTION, **(retention or {})}
        self.max_payload_bytes = max_payload_bytes

    async def publish(
        self, workspace_id: str, topic: Topic, type: EventType | str, payload: Mapping[str, Any] | None = None
    ) -> str:
        """Append an event to the topic's stream; returns its stream id.

        The payload must be JSON-serializable (datetimes, UUIDs and enums are converted).
        """
        return (await self.publish_many(workspace_id, topic, [(type, payload)]))[0]

    async def publish_many(
        self,
        workspace_id: str,
        topic: Topic,
        events: Sequence[tuple[EventType | str, Mapping[str, Any] | None]],
    ) -> list[str]:
        """Append several events to one topic's stream, in order, in one round trip; their stream ids.

        Every event is checked before any is sent: one that cannot be published sends none.
        """
        if not events:
            return []
        key = topic.key(workspace_id)
        retention = self.retention[topic.kind]
        entries: list[dict[FieldT, EncodableT]] = []
        for type, payload in events:
            event_type = EventType(type)
            data = pydantic_core.to_json(dict(payload or {}))
            if len(data) > self.max_payload_bytes:
                raise ValueError(f"event payload is {len(data)} bytes; the limit is {self.max_payload_bytes}")
            entries.append({"type": event_type.value, "at": time.time_ns() // 1_000_000, "data": data})
        if retention.ttl_seconds is None and len(entries) == 1:
            return [_text(await self.redis.xadd(key, entries[0], maxlen=retention.maxlen, approximate=True))]
        async with self.redis.pipeline(transaction=False) as pipe:
            for fields in entries:
                pipe.xadd(key, fields, maxlen=retention.maxlen, approximate=True)
            if retention.ttl_seconds is not None:
                pipe.expire(key, retention.ttl_seconds)
            answers = await pipe.execute()
        return [_text(entry_id) for entry_id in answers[: len(entries)]]

    async def read_since(
        self,
        workspace_id: str,
        topics: Sequence[Topic],
        since_ids: Mapping[Topic, str] | None = None,
        *,
        page_size: int = 1000,
    ) -> list[tuple[Topic, str, Event]]:
        """Every retained event after ``since_ids[topic]`` (all retained ones for a topic not in it).

        Returns ``(topic, stream id, event)`` ordered by id across topics. Entries this release cannot
        decode are skipped with a warning.
        """
        since_ids = since_ids or {}
        found: list[tuple[Topic, str, Event]] = []
        for topic in dict.fromkeys(topics):
            key = topic.key(workspace_id)
            since = parse_stream_id(since_ids.get(topic, "0-0"))
            if since == MAX_STREAM_POSITION:
                continue  # nothing can follow the largest id (and Redis refuses an interval that starts after it)
            start = "(" + format_stream_id(since)
            while True:
                page = await self.redis.xrange(key, min=start, max="+", count=page_size)
                for raw_id, fields in page:
                    entry_id = _text(raw_id)
                    try:
                        found.append((topic, entry_id, decode_entry(workspace_id, topic, fields)))
                    except ValueError as exc:
                        logger.warning("skipping event %s on %s: %s", entry_id, key, exc)
                if len(page) < page_size:
                    break
                start = "(" + _text(page[-1][0])
        return merge_by_id(found)

    async def positions(self, workspace_id: str, topics: Sequence[Topic]) -> dict[Topic, str]:
        """The id of each topic's newest event (``"0-0"`` for an empty stream): "now", as a cursor."""
        topics = list(dict.fromkeys(topics))
        if len(topics) == 1:  # most pages watch one topic: one command, without a pipeline's set-up
            (topic,) = topics
            entries = await self.redis.xrevrange(topic.key(workspace_id), max="+", min="-", count=1)
            return {topic: _text(entries[0][0]) if entries else "0-0"}
        async with self.redis.pipeline(transaction=False) as pipe:
            for topic in topics:
                pipe.xrevrange(topic.key(workspace_id), max="+", min="-", count=1)
            newest = await pipe.execute()
        return {
            topic: _text(entries[0][0]) if entries else "0-0" for topic, entries in zip(topics, newest, strict=True)
        }

    async def truncated(self, workspace_id: str, since_ids: Mapping[Topic, str]) -> list[Topic]:
        """The topics whose retention may already have dropped events after the given ids.

        Trimming removes the oldest entries, so events were lost when something was trimmed and ``since`` is
        older than the first entry kept. (A client whose last id is exactly the newest trimmed entry is
        reported too: Redis does not remember that id. Telling it to reload is harmless.)
        """
        lost: list[Topic] = []
        for topic, since in since_ids.items():
            try:
                info = await self.redis.xinfo_stream(topic.key(workspace_id))
            except ResponseError:  # no such key: never written, or expired as a whole
                continue
            if int(info.get("entries-added", 0)) <= int(info["length"]):
                continue  # nothing trimmed
            first = info.get("first-entry")
            kept_from = parse_stream_id(_text(first[0])) if first else (1 << 64, 0)
            if parse_stream_id(since) < kept_from:
                lost.append(topic)
        return lost
