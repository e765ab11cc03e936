"""The usage page: spend this month against the budget, charts by day, model and agent, and the live call log
(filtered by agent, model, run, status and dates; paged back by id); its CSV export and its live stream.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, tzinfo
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import BaseRoute, Route

from app.errors import ServiceError
from app.live.bus import Event, EventType, Topic
from app.live.sse import encode_cursor, event_stream
from app.llm import budget
from app.llm.catalogue import money
from app.llm.charts import daily_chart, percent, ranking_chart
from app.llm.pages.common import changed, llm_changes
from app.llm.usage import (
    PAGE_SIZE,
    STATUSES,
    CallFilter,
    choices,
    csv_chunks,
    filter_problems,
    list_calls,
    month_spend,
    summarize,
)
from app.tenants.context import WorkspaceContext
from app.tenants.permissions import permissions_of
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.pages import redirect_with_flash
from app.web.state import bus_of, db_of
from app.web.templating import is_htmx, render, templates
from app.web.timezones import zone_of
from app.web.viewer import still_allowed

_row = templates.env.get_template("llm/_call_row.html")


@dataclass
class Filters:
    query: CallFilter
    errors: dict[str, str] = field(default_factory=dict)

    @property
    def active(self) -> bool:
        q = self.query
        return any(value for value in (q.agent, q.model, q.run, q.status, q.start, q.end))

    def url_query(self, **changes: Any) -> str:
        q = self.query
        values = {
            "agent": q.agent or "",
            "model": q.model or "",
            "run": q.run or "",
            "status": q.status or "",
            "from": q.start.isoformat() if q.start else "",
            "to": q.end.isoformat() if q.end else "",
        }
        values.update({key: str(value) for key, value in changes.items()})
        return urlencode({key: value for key, value in values.items() if value})


def _text(params: Any, name: str) -> str | None:
    value = str(params.get(name, "")).strip()
    return value[:300] or None


def _date(raw: str | None, label: str, errors: dict[str, str], key: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        errors[key] = f"{label} must be a date like 2026-01-31."
        return None


def parse_filters(params: Any) -> Filters:
    """The filter form's fields (strings) as a typed filter, with what was wrong by field."""
    errors: dict[str, str] = {}
    start = _date(_text(params, "from"), "“From”", errors, "from")
    end = _date(_text(params, "to"), "“To”", errors, "to")
    before: int | None = None
    raw_before = _text(params, "before")
    if raw_before:
        if raw_before.isdigit() and len(raw_before) < 19:
            before = int(raw_before)
        else:
            errors["before"] = "That page link is not valid."
    query = CallFilter(
        agent=_text(params, "agent"),
        model=_text(params, "model"),
        run=_text(params, "run"),
        status=_text(params, "status"),
        start=start,
        end=end,
        before=before,
    )
    return Filters(query, filter_problems(query) | errors)


def call_row_html(row: dict[str, Any], zone: tzinfo = UTC) -> str:
    """A row of the call log, its time in the reader's ``zone`` (as the page around it shows times)."""
    return _row.render(call=row, time_zone=zone)


def _row_of(call: Any) -> dict[str, Any]:
    """A call (a row, or an event's payload) as the log's row shows it."""

    def get(name: str) -> Any:
        return call.get(name) if isinstance(call, dict) else getattr(call, name)

    at = get("at")
    moment: datetime = datetime.fromisoformat(at) if isinstance(at, str) else at
    cost = get("cost")
    return {
        "id": get("id"),
        "at": moment.astimezone(UTC),
        "agent_id": get("agent_id"),
        "run_id": get("run_id"),
        "model": get("model"),
        "status": get("status"),
        "error": get("error"),
        "input_tokens": get("input_tokens"),
        "output_tokens": get("output_tokens"),
        "cache_read_tokens": get("cache_read_tokens"),
        "cache_write_tokens": get("cache_write_tokens"),
        "cost": money(Decimal(str(cost))),
        "cost_approximate": get("cost_approximate"),
        "first_token_ms": get("first_token_ms"),
        "total_ms": get("total_ms"),
        "stop_reason": get("stop_reason"),
        "tool_calls": get("tool_calls"),
    }


@workspace_required("usage.view")
async def usage_page(request: Request, context: WorkspaceContext) -> Response:
    return await _usage(request, context)


def _typed(cap: Decimal | None) -> str:
    """A stored cap as its field shows it ("" for none)."""
    return "" if cap is None else f"{cap:f}"


async def _usage(
    request: Request,
    context: WorkspaceContext,
    *,
    budget_errors: dict[str, str] | None = None,
    budget_values: dict[str, str] | None = None,
) -> Response:
    filters = parse_filters(request.query_params)
    db, bus = db_of(request), bus_of(request)
    workspace_id = context.workspace.id
    topic = Topic.usage()
    # The cursor first: what is published after it comes through the stream, what committed before is listed.
    cursor = encode_cursor([topic], await bus.positions(workspace_id, [topic]))
    calls: list[Any] = []
    async with db.tenant_session(workspace_id) as session:
        agents, models = await choices(session)
        caps = await budget.caps(session)
        spent = await month_spend(session)
        summary = None
        if not filters.errors:
            calls = await list_calls(session, filters.query, PAGE_SIZE + 1)
            summary = await summarize(session, filters.query)
    more = len(calls) > PAGE_SIZE
    calls = calls[:PAGE_SIZE]
    slug = context.workspace.slug
    base = f"/w/{slug}/usage"
    filter_query = filters.url_query()
    stream_query = urlencode({"since": cursor}) + (f"&{filter_query}" if filter_query else "")
    page = {
        "filters": filters,
        "rows": [_row_of(call) for call in calls],
        "agents": agents,
        "models": models,
        "statuses": STATUSES,
        "summary": summary,
        "charts": {
            "day": daily_chart(summary),
            "model": ranking_chart(summary.by_model, "model", "usage-by-model"),
            "agent": ranking_chart(summary.by_agent, "agent", "usage-by-agent"),
        }
        if summary
        else None,
        "money": money,
        "cap": caps.monthly,
        "spent": spent,
        "spent_percent": percent(spent, caps.monthly) if caps.monthly is not None else None,
        "can_edit_budget": context.can("settings.edit"),
        "older_url": f"{base}?{filters.url_query(before=calls[-1].id)}" if more and calls else None,
        "newest_url": f"{base}?{filters.url_query()}" if filters.query.before is not None else None,
        "csv_url": f"{base}/calls.csv" + (f"?{filters.url_query()}" if filters.url_query() else ""),
        "stream_url": f"{base}/events?{stream_query}",
        "live": filters.query.before is None,
        "base": base,
        "run_cap": caps.run,
        "errors": budget_errors or {},
        "budget_values": budget_values or {"monthly_cap": _typed(caps.monthly), "run_cap": _typed(caps.run)},
        "month": datetime.now(UTC).strftime("%B %Y"),
    }
    status = 400 if filters.errors and not is_htmx(request) else 200
    if budget_errors:
        status = 422
    block: str | None = "content"
    if is_htmx(request) and request.headers.get("HX-Target") == "call-log":
        block = "calls"
    return render(request, "llm/usage.html", page, status_code=status, block=block)


@workspace_required("usage.view")
async def usage_csv(request: Request, context: WorkspaceContext) -> Response:
    filters = parse_filters(request.query_params)
    if filters.errors:
        return Response("; ".join(filters.errors.values()), status_code=400, media_type="text/plain")
    db, workspace_id = db_of(request), context.workspace.id

    async def body() -> AsyncIterator[str]:
        async with db.tenant_session(workspace_id) as session:
            async for chunk in csv_chunks(session, filters.query):
                yield chunk

    name = f"llm-calls-{context.workspace.slug}-{datetime.now(UTC):%Y%m%d-%H%M%S}.csv"
    headers = {"content-disposition": f'attachment; filename="{name}"', "cache-control": "no-store"}
    return StreamingResponse(body(), media_type="text/csv; charset=utf-8", headers=headers)


def _matches(query: CallFilter, payload: dict[str, Any]) -> bool:
    if query.agent and payload.get("agent_id") != query.agent:
        return False
    if query.model and payload.get("model") != query.model:
        return False
    if query.run and payload.get("run_id") != query.run:
        return False
    if query.status and payload.get("status") != query.status:
        return False
    day = str(payload.get("at", ""))[:10]
    if query.start and day < query.start.isoformat():
        return False
    return not (query.end and day > query.end.isoformat())


def render_call(event: Event, zone: tzinfo = UTC) -> str:
    """An LLM_CALL event as the call log's row (autoescaped); other events as nothing (the page reloads)."""
    if event.type != EventType.LLM_CALL:
        return ""
    return call_row_html(_row_of(event.payload), zone)


@workspace_required("usage.view")
async def usage_events(request: Request, context: WorkspaceContext) -> Response:
    """The call log's live stream: a row per call, for the viewer's filters."""
    filters = parse_filters(request.query_params)
    query = filters.query
    workspace_id = context.workspace.id

    allowed = still_allowed(request, context)

    zone = zone_of(request, context.user.time_zone)

    def render(event: Event) -> str:
        if event.type == EventType.LLM_CALL and not _matches(query, event.payload):
            return ""
        return render_call(event, zone)

    return await event_stream(
        request,
        request.app.state.hub,
        bus_of(request),
        workspace_id,
        [Topic.usage()],
        allowed,
        render,
        permissions=permissions_of(context.role),
    )


@workspace_required("settings.edit")
async def save_budget(request: Request, context: WorkspaceContext) -> Response:
    """Both caps in one form: each refused value is named next to its field, and then neither changes."""
    form = await read_form(request)
    base = f"/w/{context.workspace.slug}/usage"
    typed = {name: form.get(name, "") for name in ("monthly_cap", "run_cap")}
    caps: dict[str, Decimal | None] = {}
    errors: dict[str, str] = {}
    for name, value in typed.items():
        try:
            caps[name] = budget.parse_cap(value, name)
        except ServiceError as refused:
            errors[name] = refused.message
    if errors:
        return await _usage(request, context, budget_errors=errors, budget_values=typed)
    async with llm_changes(request, context) as session:
        monthly = await budget.set_monthly_cap(session, actor=context.actor, cap=caps["monthly_cap"])
        per_run = await budget.set_run_cap(session, actor=context.actor, cap=caps["run_cap"])
    changed(request, context)
    if not (monthly or per_run):
        return redirect_with_flash(request, base, "Nothing to change.")
    monthly_cap, run_cap = caps["monthly_cap"], caps["run_cap"]
    said = []
    if monthly:
        said.append("No monthly cap." if monthly_cap is None else f"Monthly cap set to ${monthly_cap:,.2f}.")
    if per_run:
        said.append("No cap per run." if run_cap is None else f"Each run's cap set to ${run_cap:,.2f}.")
    return redirect_with_flash(request, base, " ".join(said))


routes: list[BaseRoute] = [
    Route("/w/{slug}/usage", usage_page, methods=["GET"]),
    Route("/w/{slug}/usage/calls.csv", usage_csv, methods=["GET"]),
    Route("/w/{slug}/usage/events", usage_events, methods=["GET"]),
    Route("/w/{slug}/usage/budget", save_budget, methods=["POST"]),
]
