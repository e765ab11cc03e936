"""Reading the call log: filtered lists, totals by day, model and agent, and the rows of the CSV export.

The usage pages and their JSON twins call these with the workspace's tenant session.
"""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import ColumnElement, Date, cast, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.llm.models import LlmCall
from app.llm.spend import month_start

PAGE_SIZE = 50
DEFAULT_DAYS = 30
MAX_DAYS = 366
CSV_LIMIT = 100_000
STATUSES = ("ok", "error", "refused")


@dataclass
class CallFilter:
    """What the call log filters by; ``before`` pages back by row id. Dates are UTC days, both included."""

    agent: str | None = None
    model: str | None = None
    run: str | None = None
    status: str | None = None
    start: date | None = None
    end: date | None = None
    before: int | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        found: list[ColumnElement[bool]] = []
        if self.agent:
            found.append(LlmCall.agent_id == self.agent)
        if self.model:
            found.append(LlmCall.model == self.model)
        if self.run:
            found.append(LlmCall.run_id == self.run)
        if self.status:
            found.append(LlmCall.status == self.status)
        if self.start:
            found.append(LlmCall.at >= datetime.combine(self.start, time.min, tzinfo=UTC))
        if self.end:
            found.append(LlmCall.at < datetime.combine(self.end + timedelta(days=1), time.min, tzinfo=UTC))
        if self.before is not None:
            found.append(LlmCall.id < self.before)
        return found

    def days(self, today: date | None = None) -> tuple[date, date]:
        """The charts' range: the filter's, or the last 30 days; at most a year."""
        end = self.end or today or datetime.now(UTC).date()
        start = self.start or end - timedelta(days=DEFAULT_DAYS - 1)
        if (end - start).days >= MAX_DAYS:
            start = end - timedelta(days=MAX_DAYS - 1)
        return start, end

    def with_range(self, today: date | None = None) -> CallFilter:
        start, end = self.days(today)
        return CallFilter(self.agent, self.model, self.run, self.status, start, end, None)


def filter_problems(query: CallFilter) -> dict[str, str]:
    """What is wrong with a filter, by field: the page and the API refuse alike."""
    problems: dict[str, str] = {}
    for key, label, day in (("from", "“From”", query.start), ("to", "“To”", query.end)):
        if day is not None and not 1970 <= day.year <= 9000:
            problems[key] = f"{label} must be a date between 1970 and 9000."
    if query.start and query.end and query.start > query.end and not problems:
        problems["to"] = "“To” must not be before “From”."
    if query.status is not None and query.status not in STATUSES:
        problems["status"] = "The status is ok, error or refused."
    for key, value in (("agent", query.agent), ("model", query.model), ("run", query.run)):
        if value is not None and (len(value) > 250 or "\x00" in value):
            problems[key] = "That is too long to be a name."
    return problems


async def list_calls(session: AsyncSession, query: CallFilter, limit: int = PAGE_SIZE) -> list[LlmCall]:
    rows = await session.scalars(select(LlmCall).where(*query.conditions()).order_by(LlmCall.id.desc()).limit(limit))
    return list(rows)


async def get_call(session: AsyncSession, row_id: int) -> LlmCall | None:
    return await session.get(LlmCall, row_id)


@dataclass
class Group:
    """Totals of the calls of one day, model or agent."""

    key: str
    calls: int = 0
    errors: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: Decimal = Decimal(0)
    approximate: bool = False


@dataclass
class Summary:
    start: date
    end: date
    total: Group
    by_day: list[Group]
    by_model: list[Group]
    by_agent: list[Group]
    # The cost of each (day, model), for the stacked bars: {day: {model: cost}}.
    day_model: dict[str, dict[str, Decimal]] = field(default_factory=dict)


def _totals() -> list[Any]:
    return [
        func.count(),
        func.count().filter(LlmCall.status != "ok"),
        func.coalesce(func.sum(LlmCall.input_tokens), 0),
        func.coalesce(func.sum(LlmCall.output_tokens), 0),
        func.coalesce(func.sum(LlmCall.cache_read_tokens), 0),
        func.coalesce(func.sum(LlmCall.cache_write_tokens), 0),
        func.coalesce(func.sum(LlmCall.cost), 0),
        func.coalesce(func.bool_or(LlmCall.cost_approximate), False),
    ]


def _group(key: str, row: tuple[object, ...]) -> Group:
    calls, errors, inputs, outputs, reads, writes, cost, approximate = row
    return Group(
        key,
        int(calls),  # type: ignore[call-overload]
        int(errors),  # type: ignore[call-overload]
        int(inputs),  # type: ignore[call-overload]
        int(outputs),  # type: ignore[call-overload]
        int(reads),  # type: ignore[call-overload]
        int(writes),  # type: ignore[call-overload]
        Decimal(str(cost)),
        bool(approximate),
    )


async def summarize(session: AsyncSession, query: CallFilter, today: date | None = None) -> Summary:
    """Totals over the filter's days (the last 30 by default), by day, by model and by agent."""
    ranged = query.with_range(today)
    start, end = ranged.days()
    conditions = ranged.conditions()
    day = cast(func.timezone("UTC", LlmCall.at), Date)
    total_row = (await session.execute(select(*_totals()).where(*conditions))).one()
    by_day = {
        str(row[0]): _group(str(row[0]), tuple(row[1:]))
        for row in await session.execute(select(day, *_totals()).where(*conditions).group_by(day))
    }
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    by_model = [
        _group(str(row[0]), tuple(row[1:]))
        for row in await session.execute(select(LlmCall.model, *_totals()).where(*conditions).group_by(LlmCall.model))
    ]
    by_agent = [
        _group(str(row[0]), tuple(row[1:]))
        for row in await session.execute(
            select(LlmCall.agent_id, *_totals()).where(*conditions).group_by(LlmCall.agent_id)
        )
    ]
    day_model: dict[str, dict[str, Decimal]] = {}
    for row in await session.execute(
        select(day, LlmCall.model, func.coalesce(func.sum(LlmCall.cost), 0))
        .where(*conditions)
        .group_by(day, LlmCall.model)
    ):
        day_model.setdefault(str(row[0]), {})[str(row[1])] = Decimal(str(row[2]))

    def order(groups: list[Group]) -> list[Group]:
        return sorted(groups, key=lambda group: (-group.cost, -group.calls, group.key))

    return Summary(
        start=start,
        end=end,
        total=_group("total", tuple(total_row)),
        by_day=[by_day.get(str(d), Group(str(d))) for d in days],
        by_model=order(by_model),
        by_agent=order(by_agent),
        day_model=day_model,
    )


async def month_spend(session: AsyncSession, moment: datetime | None = None) -> Decimal:
    """What this calendar month (UTC) has cost so far, from the call log."""
    since = month_start(moment or datetime.now(UTC))
    total = await session.scalar(select(func.coalesce(func.sum(LlmCall.cost), 0)).where(LlmCall.at >= since))
    return Decimal(str(total or 0))


async def choices(session: AsyncSession) -> tuple[list[str], list[str]]:
    """The agents and models the log names (for the filters' pick lists), the most recent 200 of each."""
    agents = await session.scalars(select(LlmCall.agent_id).distinct().order_by(LlmCall.agent_id).limit(200))
    models = await session.scalars(select(LlmCall.model).distinct().order_by(LlmCall.model).limit(200))
    return list(agents), list(models)


CSV_COLUMNS = (
    "id", "call_id", "at", "agent_id", "run_id", "step_id", "session_id", "model", "provider", "status",
    "http_status", "error", "input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "cost_usd",
    "cost_approximate", "first_token_ms", "total_ms", "stop_reason", "tool_calls", "stream",
)  # fmt: skip


def _safe(value: object) -> str:
    """A cell a spreadsheet will not run as a formula (agent ids and errors come from elsewhere)."""
    text = "" if value is None else str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def csv_row(call: LlmCall) -> list[str]:
    return [
        str(call.id), str(call.call_id), call.at.astimezone(UTC).isoformat(), _safe(call.agent_id),
        _safe(call.run_id), _safe(call.step_id), _safe(call.session_id), _safe(call.model), _safe(call.provider),
        call.status, str(call.http_status), _safe(call.error), str(call.input_tokens), str(call.output_tokens),
        str(call.cache_read_tokens), str(call.cache_write_tokens), f"{call.cost:f}",
        "true" if call.cost_approximate else "false", "" if call.first_token_ms is None else str(call.first_token_ms),
        str(call.total_ms), call.stop_reason or "", str(call.tool_calls), "true" if call.stream else "false",
    ]  # fmt: skip


async def csv_chunks(session: AsyncSession, query: CallFilter) -> AsyncIterator[str]:
    """The filtered log as CSV (newest first, at most 100,000 rows), a few hundred rows per chunk."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    statement = select(LlmCall).where(*query.conditions()).order_by(LlmCall.id.desc()).limit(CSV_LIMIT)
    count = 0
    async for call in await session.stream_scalars(statement.execution_options(yield_per=500)):
        writer.writerow(csv_row(call))
        count += 1
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()
