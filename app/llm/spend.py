"""Spend against budgets: running totals in Redis, rebuilt from the call log in Postgres when missing.

Keys (in billionths of a dollar, so additions are exact)::

    marid:ws:{workspace}:llm:spend:{YYYY-MM}        this calendar month (UTC)
    marid:ws:{workspace}:llm:run:{run}:spend        one run
    marid:ws:{workspace}:llm:pending                 call records written ahead, until Postgres has them

A total is kept only while a cap needs it, and lives an hour: when missing, the next call that needs it sums the
call log (``llm_calls``) and sets it; a call's cost is added when its record is written ahead (only to a total
that exists, so a total is never started from a partial sum). Calls in flight when a cap is reached still finish:
the cap stops the calls that start after it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from redis.asyncio import Redis
from sqlalchemy import func, select

from app.db import Database
from app.live.bus import check_workspace_id
from app.llm.catalogue import money
from app.llm.metering import CallRecord
from app.llm.models import LlmCall
from app.llm.tokens import Grant, revoked_key

NANO = 1_000_000_000
TOTAL_TTL = 3600
WARN_AT = Decimal("0.8")

# Append the record to the pending stream; add its cost to the month's and the run's totals where they exist.
_WRITE_AHEAD = """
local entry = redis.call('XADD', KEYS[1], '*', 'r', ARGV[1])
local month = -1
local run = -1
if redis.call('EXISTS', KEYS[2]) == 1 then month = redis.call('INCRBY', KEYS[2], ARGV[2]) end
if KEYS[3] ~= KEYS[2] and redis.call('EXISTS', KEYS[3]) == 1 then run = redis.call('INCRBY', KEYS[3], ARGV[2]) end
return {entry, month, run}
"""


def month_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m")


def month_start(moment: datetime) -> datetime:
    utc = moment.astimezone(UTC)
    return datetime(utc.year, utc.month, 1, tzinfo=UTC)


def month_key(workspace_id: str, month: str) -> str:
    return f"marid:ws:{check_workspace_id(workspace_id)}:llm:spend:{month}"


def run_key(workspace_id: str, run_id: str) -> str:
    return f"marid:ws:{check_workspace_id(workspace_id)}:llm:run:{run_id}:spend"


def pending_key(workspace_id: str) -> str:
    return f"marid:ws:{check_workspace_id(workspace_id)}:llm:pending"


def warned_key(workspace_id: str, what: str, level: int) -> str:
    return f"marid:ws:{check_workspace_id(workspace_id)}:llm:warned:{what}:{level}"


def dollars(nano: int) -> Decimal:
    return (Decimal(nano) / NANO).quantize(Decimal("0.000000001"))


@dataclass(frozen=True)
class Budget:
    """Where a call stands before it starts: the totals its caps count (None: that cap is not set)."""

    revoked: bool
    month_cap: Decimal | None
    month_spent: Decimal | None
    run_cap: Decimal | None
    run_spent: Decimal | None

    def refusal(self) -> str | None:
        """Why the call may not start, in words the caller shows; None when it may."""
        if self.month_cap is not None and self.month_spent is not None and self.month_spent >= self.month_cap:
            return (
                f"budget exceeded: this workspace's monthly LLM budget of {money(self.month_cap)} is spent "
                f"({money(self.month_spent)} this month); an admin can raise it on the Usage page"
            )
        if self.run_cap is not None and self.run_spent is not None and self.run_spent >= self.run_cap:
            return f"budget exceeded: this run's LLM budget of {money(self.run_cap)} is spent ({money(self.run_spent)})"
        return None


class SpendCounters:
    def __init__(self, redis: Redis, db: Database) -> None:
        self.redis = redis
        self.db = db
        self._write_ahead = redis.register_script(_WRITE_AHEAD)

    async def check(self, grant: Grant, month_cap: Decimal | None, moment: datetime) -> Budget:
        """One round trip: is the token revoked, and what have the month and the run spent (where capped)."""
        workspace_id = grant.workspace_id
        run = run_key(workspace_id, grant.run_id) if grant.run_id and grant.run_cap is not None else None
        if month_cap is None and run is None:  # nothing capped: only the revocation mark to look at
            revoked = await self.redis.exists(revoked_key(workspace_id, grant.id))
            return Budget(bool(revoked), None, None, None, None)
        month = month_key(workspace_id, month_of(moment))
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.exists(revoked_key(workspace_id, grant.id))
            pipe.get(month)
            if run is not None:
                pipe.get(run)
            answers = await pipe.execute()
        month_spent = run_spent = None
        if month_cap is not None:
            month_spent = await self._total(answers[1], month, workspace_id, month_start(moment), None)
        if run is not None and grant.run_id is not None:
            run_spent = await self._total(answers[2], run, workspace_id, None, grant.run_id)
        return Budget(bool(answers[0]), month_cap, month_spent, grant.run_cap, run_spent)

    async def _total(
        self, cached: bytes | None, key: str, workspace_id: str, since: datetime | None, run_id: str | None
    ) -> Decimal:
        if cached is not None:
            return dollars(int(cached))
        query = select(func.coalesce(func.sum(LlmCall.cost), 0))
        if since is not None:
            query = query.where(LlmCall.at >= since)
        if run_id is not None:
            query = query.where(LlmCall.run_id == run_id)
        async with self.db.tenant_session(workspace_id) as session:
            total = Decimal(await session.scalar(query) or 0)
        nano = int(total * NANO)
        # NX: a total another process set meanwhile (perhaps already counting newer calls) wins.
        if not await self.redis.set(key, nano, ex=TOTAL_TTL, nx=True):
            again = await self.redis.get(key)
            if again is not None:
                return dollars(int(again))
        return dollars(nano)

    async def write_ahead(self, record: CallRecord) -> tuple[str, Decimal | None, Decimal | None]:
        """Keep the call's record in Redis (durable before the caller sees the end of the answer) and add its
        cost to the running totals; returns the entry id and the new month and run totals (None: not kept)."""
        workspace_id = record.workspace_id
        month = month_key(workspace_id, month_of(record.at))
        run = run_key(workspace_id, record.run_id) if record.run_id else month
        result = await self._write_ahead(
            keys=[pending_key(workspace_id), month, run],
            args=[json.dumps(record.to_json()), record.nano_usd],
        )
        entry, month_total, run_total = result
        entry_id = entry.decode() if isinstance(entry, bytes) else str(entry)
        return (
            entry_id,
            None if int(month_total) < 0 else dollars(int(month_total)),
            None if int(run_total) < 0 else dollars(int(run_total)),
        )

    async def first_time(self, workspace_id: str, what: str, level: int, seconds: int) -> bool:
        """True once per ``what`` and level (a month, a run) across processes: whoever sets the mark warns."""
        return bool(await self.redis.set(warned_key(workspace_id, what, level), b"1", nx=True, ex=seconds))
