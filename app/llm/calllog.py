"""Writing the call log: durable before the caller has its answer, in Postgres a moment later, off its path.

For each call the gateway first writes the record ahead into the workspace's pending stream in Redis (one round
trip, with the spend totals: :meth:`SpendCounters.write_ahead`), before the last bytes of the answer go out.
Then, in a task of its own, it inserts the row into ``llm_calls``, removes the pending entry, publishes the
``LLM_CALL`` event and, where a budget crossed 80 % or 100 %, the warning (an audit entry and an event). A
record a crash left pending is inserted by the worker's sweep (:func:`sweep`); the insert is idempotent (the
record's ``call_id``), so a record is never counted twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.audit.unit_of_work import workspace_change
from app.db import Database, UnknownWorkspace
from app.live.bus import EventBus, EventType, Topic
from app.llm.catalogue import money
from app.llm.metering import CallRecord
from app.llm.models import LlmCall
from app.llm.spend import WARN_AT, SpendCounters, month_of, pending_key

logger = logging.getLogger("marid.llm")
GATEWAY = Actor.system("LLM gateway")
SWEEP_AFTER_SECONDS = 30
BATCH = 500
MONTH_SECONDS = 40 * 24 * 3600
RUN_SECONDS = 8 * 24 * 3600


@dataclass(frozen=True)
class Caps:
    """The caps in force when the call started (for the warnings)."""

    month: Decimal | None
    run: Decimal | None


def event_payload(record: CallRecord, row_id: int) -> dict[str, Any]:
    """What the live event says about a call: its numbers, never anything of the conversation."""
    return {
        "id": row_id,
        "call_id": str(record.call_id),
        "at": record.at.isoformat(),
        "agent_id": record.agent_id,
        "run_id": record.run_id,
        "step_id": record.step_id,
        "session_id": record.session_id,
        "model": record.model,
        "provider": record.provider,
        "status": record.status,
        "http_status": record.http_status,
        "error": record.error,
        "input_tokens": record.input_tokens,
        "output_tokens": record.output_tokens,
        "cache_read_tokens": record.cache_read_tokens,
        "cache_write_tokens": record.cache_write_tokens,
        "cost": str(record.cost),
        "cost_approximate": record.cost_approximate,
        "first_token_ms": record.first_token_ms,
        "total_ms": record.total_ms,
        "stop_reason": record.stop_reason,
        "tool_calls": record.tool_calls,
    }


# One statement for every insert (compiled once); many rows at a time go as one batch.
_INSERT = insert(LlmCall).on_conflict_do_nothing(index_elements=["call_id"]).returning(LlmCall.id, LlmCall.call_id)


async def insert_calls(session: AsyncSession, records: list[CallRecord]) -> dict[uuid.UUID, int]:
    """Insert the rows; the ids of those that were not there yet, by call id."""
    if not records:
        return {}
    rows = await session.execute(_INSERT, [record.row() for record in records])
    return {call_id: row_id for row_id, call_id in rows}


async def insert_call(session: AsyncSession, record: CallRecord) -> int | None:
    """Insert the row; its id, or None when it was already there."""
    return (await insert_calls(session, [record])).get(record.call_id)


@dataclass(frozen=True)
class _Written:
    """A record written ahead, waiting for Postgres (with the totals its write-ahead returned)."""

    record: CallRecord
    entry_id: str
    caps: Caps
    month_total: Decimal | None
    run_total: Decimal | None


class CallLog:
    def __init__(self, db: Database, bus: EventBus, spend: SpendCounters) -> None:
        self.db = db
        self.bus = bus
        self.spend = spend
        self._waiting: list[_Written] = []
        self._writer: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    async def write(self, record: CallRecord, caps: Caps) -> None:
        """Write ahead now (awaited: the answer ends after this); store and announce in the background."""
        entry_id, month_total, run_total = await self.spend.write_ahead(record)
        self._enqueue(_Written(record, entry_id, caps, month_total, run_total))

    def write_later(self, record: CallRecord, caps: Caps) -> None:
        """For a call whose caller is gone (its task is being cancelled): everything in the background."""

        async def ahead() -> None:
            entry_id, month_total, run_total = await self.spend.write_ahead(record)
            self._enqueue(_Written(record, entry_id, caps, month_total, run_total))

        self.detach(ahead())

    def detach(self, work: Awaitable[None]) -> None:
        """Run ``work`` in a task of its own (kept until done; failures logged)."""

        async def run() -> None:
            try:
                await work
            except Exception:
                logger.exception("background work of the LLM gateway failed")

        task = asyncio.ensure_future(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _enqueue(self, written: _Written) -> None:
        # One writer at a time: records that arrive while it writes go together in its next batch, so under
        # load the log costs one transaction per batch, not per call.
        self._waiting.append(written)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.ensure_future(self._write_waiting())

    async def _write_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[:BATCH], self._waiting[BATCH:]
            try:
                await self._store(batch)
            except Exception:  # written ahead in Redis: the sweep stores them shortly
                logger.exception("could not store %d LLM call records now; the sweep will", len(batch))

    async def drain(self, seconds: float = 10.0) -> None:
        """Wait for the records still being stored (the web app's shutdown)."""
        pending = [task for task in (*self._tasks, self._writer) if task is not None and not task.done()]
        if pending:
            await asyncio.wait(pending, timeout=seconds)

    async def _store(self, batch: list[_Written]) -> None:
        by_workspace: dict[str, list[_Written]] = {}
        for written in batch:
            by_workspace.setdefault(written.record.workspace_id, []).append(written)
        for workspace_id, items in by_workspace.items():
            async with self.db.tenant_session(workspace_id) as session:
                ids = await insert_calls(session, [item.record for item in items])
            await self.spend.redis.xdel(pending_key(workspace_id), *[item.entry_id for item in items])
            for item in items:
                row_id = ids.get(item.record.call_id)
                if row_id is not None:
                    payload = event_payload(item.record, row_id)
                    await self.bus.publish(workspace_id, Topic.usage(), EventType.LLM_CALL, payload)
                await self._warnings(item.record, item.caps, item.month_total, item.run_total)

    async def _warnings(
        self, record: CallRecord, caps: Caps, month_total: Decimal | None, run_total: Decimal | None
    ) -> None:
        checks = []
        if caps.month is not None and month_total is not None:
            checks.append(("month", month_of(record.at), "this month's budget", caps.month, month_total, MONTH_SECONDS))
        if caps.run is not None and run_total is not None and record.run_id:
            checks.append(("run", record.run_id, f"run {record.run_id}'s budget", caps.run, run_total, RUN_SECONDS))
        for kind, what, name, cap, total, seconds in checks:
            for level, action in ((100, "llm.budget_reached"), (80, "llm.budget_warning")):
                if total < cap * (WARN_AT if level == 80 else 1):
                    continue
                if await self.spend.first_time(record.workspace_id, f"{kind}:{what}", level, seconds):
                    await self._warn(record.workspace_id, action, kind, name, cap, total, level)
                break  # the highest level reached speaks; a lower one is implied

    async def _warn(
        self, workspace_id: str, action: str, kind: str, name: str, cap: Decimal, total: Decimal, level: int
    ) -> None:
        percent = int(total * 100 / cap) if cap else 100
        details = {
            "budget": name,
            "kind": kind,
            "percent": str(percent),
            "cap": money(cap),
            "spent": money(total),
        }
        async with workspace_change(self.db, self.bus, workspace_id) as session:
            await record_in_workspace(session, action, GATEWAY, details)
        await self.bus.publish(
            workspace_id, Topic.usage(), EventType.LLM_BUDGET_WARNING, {**details, "level": level, "action": action}
        )


async def sweep(db: Database, bus: EventBus, spend: SpendCounters, *, older_than: float = SWEEP_AFTER_SECONDS) -> int:
    """Insert what crashed processes left pending in every workspace's stream; returns how many rows it added."""
    added = 0
    cutoff = int((time.time() - older_than) * 1000)
    async for raw_key in spend.redis.scan_iter(match="marid:ws:*:llm:pending", count=500):
        key = raw_key.decode() if isinstance(raw_key, bytes) else str(raw_key)
        workspace_id = key.split(":")[2]
        entries = await spend.redis.xrange(key, min="-", max=str(cutoff), count=1000)
        for entry_id, fields in entries:
            try:
                record = CallRecord.from_json(json.loads(fields[b"r"]))
                async with db.tenant_session(workspace_id) as session:
                    row_id = await insert_call(session, record)
            except UnknownWorkspace:
                await spend.redis.delete(key)  # the workspace was deleted, and its log with it
                break
            except Exception:
                logger.exception("could not sweep LLM call record %s of %s", entry_id, key)
                continue
            await spend.redis.xdel(key, entry_id)
            if row_id is not None:
                added += 1
                await bus.publish(workspace_id, Topic.usage(), EventType.LLM_CALL, event_payload(record, row_id))
    return added
