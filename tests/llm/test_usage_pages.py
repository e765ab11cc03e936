"""The usage page and its twins: this month against the budget, charts as SVG (by day, model and agent), the
call log with filters, the CSV export, the budget form; the JSON twins."""

from __future__ import annotations

import csv
import io
import re
import secrets
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.llm.calllog import insert_call
from app.llm.metering import CallRecord
from app.llm.models import LlmBudget
from app.main import create_app
from app.tenants.models import Workspace
from tests.apikeys.helpers import make_key
from tests.helpers import http_client, log_in, post_form, workspace_with


async def _log(db: Database, workspace_id: str, **values: Any) -> None:
    record = CallRecord(
        call_id=uuid.uuid4(),
        at=values.pop("at", datetime.now(UTC)),
        workspace_id=workspace_id,
        token_id=None,
        agent_id=values.pop("agent_id", "finn"),
        run_id=values.pop("run_id", "run_1"),
        step_id="step_1",
        session_id=None,
        model=values.pop("model", "openai/gpt-4.1"),
        provider="openai",
        provider_kind="openai",
        **values,
    )
    async with db.tenant_session(workspace_id) as session:
        await insert_call(session, record)


@pytest.fixture
async def logged(db: Database) -> tuple[Workspace, list[Any]]:
    workspace, users = await workspace_with(db, f"usage-{secrets.token_hex(3)}", ["admin", "member", "viewer"])
    now = datetime.now(UTC)
    await _log(
        db, workspace.id, input_tokens=1000, output_tokens=100, cost=Decimal("0.0035"), first_token_ms=120, total_ms=900
    )
    await _log(db, workspace.id, agent_id="ada", model="claude/claude-sonnet-4-5", cost=Decimal("1.25"), tool_calls=2,
               stop_reason="tool_calls", at=now - timedelta(days=2))  # fmt: skip
    await _log(db, workspace.id, agent_id="=HYPERLINK(\"x\")", model="scripted/coder", status="error", http_status=502,
               error="Scripted failed (500): Kaboom.", at=now - timedelta(days=1))  # fmt: skip
    await _log(db, workspace.id, model="scripted/unpriced", cost_approximate=True, at=now - timedelta(days=40))
    return workspace, users


async def test_the_usage_page_shows_spend_charts_and_the_log(
    db: Database, settings: Settings, logged: tuple[Workspace, list[Any]]
) -> None:
    workspace, (owner, *_) = logged
    base = f"/w/{workspace.slug}/usage"
    with http_client(create_app(settings)) as client:
        log_in(client, owner.email)
        page = client.get(base)
        assert page.status_code == 200
        text = page.text
        # This month: what the log says (the 40-day-old call is outside it, and outside the default 30 days).
        assert "$1.2535" in text or "$1.25" in text
        # Three charts, each an accessible SVG with a title, a description and axes' labels.
        assert text.count('<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart') == 3
        assert '<title id="usage-by-day-title">LLM spend per day' in text
        assert "Spend (USD)" in text and "Day (UTC)" in text
        assert "claude/claude-sonnet-4-5: $1.25 in 1 calls" in text  # the description says the numbers
        assert "<script" not in text.split("<main", 1)[1] and " style=" not in text
        # The log, newest first, with a live stream for new calls.
        rows = re.findall(r'<tr data-feed-item data-audit-id="(\d+)"', text)
        assert len(rows) == 4 and rows == sorted(rows, reverse=True)
        assert f'sse-connect="{base}/events?since=' in text
        assert "Scripted failed (500): Kaboom." in text and "&amp;" not in "=HYPERLINK"
        # Filters: agent, model, status, dates.
        ada = client.get(base, params={"agent": "ada"})
        assert len(re.findall(r"<tr data-feed-item", ada.text)) == 1 and "claude/claude-sonnet-4-5" in ada.text
        failed = client.get(base, params={"status": "error"})
        assert len(re.findall(r"<tr data-feed-item", failed.text)) == 1
        old = client.get(base, params={"to": (datetime.now(UTC) - timedelta(days=30)).date().isoformat()})
        assert len(re.findall(r"<tr data-feed-item", old.text)) == 1 and "scripted/unpriced" in old.text
        bad = client.get(base, params={"from": "2026-13-45", "to": "yesterday"})
        assert bad.status_code == 400 and "must be a date like" in bad.text
        backwards = client.get(base, params={"from": "2026-05-02", "to": "2026-05-01"})
        assert backwards.status_code == 400 and "must not be before" in backwards.text
        # The call log alone, as its feed asks for itself after reconnecting.
        fragment = client.get(base, headers={"HX-Request": "true", "HX-Target": "call-log"})
        assert fragment.status_code == 200 and "<h1>" not in fragment.text and "data-feed-item" in fragment.text

        export = client.get(f"{base}/calls.csv", params={"status": "error"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows_csv = list(csv.reader(io.StringIO(export.text)))
    assert rows_csv[0][:4] == ["id", "call_id", "at", "agent_id"] and len(rows_csv) == 2
    # A cell a spreadsheet would run as a formula is defused.
    assert rows_csv[1][3] == '\'=HYPERLINK("x")' and rows_csv[1][11] == "Scripted failed (500): Kaboom."


async def test_the_budget_form(db: Database, settings: Settings, logged: tuple[Workspace, list[Any]]) -> None:
    workspace, (owner, admin, member, _) = logged
    base = f"/w/{workspace.slug}/usage"
    with http_client(create_app(settings)) as client:
        log_in(client, admin.email)
        for value, message in (
            ("lots", "Enter the cap in dollars"),
            ("-5", "between $0 and"),
            ("1.234", "whole cents"),
        ):
            refused = post_form(client, base, f"{base}/budget", {"monthly_cap": value})
            assert refused.status_code == 422 and message in refused.text
        async with db.tenant_session(workspace.id) as session:
            assert await session.get(LlmBudget, 1) is None
        saved = post_form(client, base, f"{base}/budget", {"monthly_cap": "$1,000"})
        assert saved.status_code == 303
        page = client.get(base)
        assert "of a <strong>$1,000.00</strong> monthly cap" in page.text
    with http_client(create_app(settings)) as client:
        log_in(client, member.email)
        assert "Save cap" not in client.get(base).text
        assert post_form(client, base, f"{base}/budget", {"monthly_cap": "1"}).status_code == 403
    async with db.tenant_session(workspace.id) as session:
        budget = await session.get(LlmBudget, 1)
        changed = await session.scalar(select(AuditEvent).where(AuditEvent.action == "llm.budget_changed"))
    assert budget is not None and budget.monthly_cap == Decimal("1000.00")
    assert changed is not None and changed.details["to"] == "$1,000.00"


async def test_the_json_twins(db: Database, settings: Settings, logged: tuple[Workspace, list[Any]]) -> None:
    workspace, (owner, admin, member, viewer) = logged
    _, token = await make_key(db, workspace, admin, "admin", kind="personal", scope="admin")
    _, read_only = await make_key(db, workspace, viewer, "viewer", kind="personal", scope="read")
    api = f"/api/v1/workspaces/{workspace.slug}/llm"
    with http_client(create_app(settings)) as client:
        auth = {"Authorization": f"Bearer {token}"}
        calls = client.get(f"{api}/calls", headers=auth, params={"limit": 2})
        assert calls.status_code == 200
        body = calls.json()
        assert len(body["data"]) == 2 and body["next_cursor"]
        rest = client.get(f"{api}/calls", headers=auth, params={"limit": 2, "cursor": body["next_cursor"]}).json()
        assert len(rest["data"]) == 2 and rest["next_cursor"] is None
        assert {call["cost"] for call in body["data"] + rest["data"]} >= {"1.250000000", "0.003500000"}
        usage = client.get(f"{api}/usage", headers=auth).json()
        assert usage["total"]["calls"] == 3 and Decimal(usage["total"]["cost"]) == Decimal("1.2535")
        assert len(usage["by_day"]) == 30 and usage["by_model"][0]["key"] == "claude/claude-sonnet-4-5"
        bad = client.get(f"{api}/calls", headers=auth, params={"status": "weird"})
        assert bad.status_code == 422
        assert client.get(f"{api}/budget", headers=auth).json()["monthly_cap"] is None
        put = client.put(f"{api}/budget", headers=auth, json={"monthly_cap": "50"})
        assert put.status_code == 200 and put.json()["monthly_cap"] == "50.00"
        spent = Decimal(put.json()["spent_this_month"])  # the calls of this calendar month (UTC) only
        assert spent in (Decimal("0.0035"), Decimal("1.2535")) and put.json()["percent"] == (1 if spent < 1 else 3)
        assert client.put(f"{api}/budget", headers=auth, json={"monthly_cap": "x"}).status_code == 422
        # A viewer's key sees providers but not usage.
        viewer_auth = {"Authorization": f"Bearer {read_only}"}
        assert client.get(f"{api}/providers", headers=viewer_auth).status_code == 200
        assert client.get(f"{api}/calls", headers=viewer_auth).status_code == 403


async def test_the_call_log_shows_times_in_the_readers_zone(
    db: Database, settings: Settings, logged: tuple[Workspace, list[Any]]
) -> None:
    from zoneinfo import ZoneInfo

    from sqlalchemy import update

    from app.auth.models import User
    from app.live.bus import Event, EventType, Topic
    from app.llm.pages.usage import render_call

    workspace, (owner, *_) = logged
    async with db.public_session() as session:
        await session.execute(update(User).where(User.id == owner.id).values(time_zone="Asia/Tokyo"))
    at = datetime(2026, 5, 30, 23, 30, 5, tzinfo=UTC)
    await _log(db, workspace.id, agent_id="tokyo", at=at)
    with http_client(create_app(settings)) as client:
        log_in(client, owner.email)
        page = client.get(
            f"/w/{workspace.slug}/usage", params={"agent": "tokyo", "from": "2026-05-30", "to": "2026-05-31"}
        )
    assert page.status_code == 200 and "(Asia/Tokyo;" in page.text
    row = page.text.split("data-feed-item", 2)[1]
    assert "2026-05-31 08:30:05" in row and 'title="2026-05-30 23:30' in row
    # A call arriving live is shown the same way.
    event = Event(type=EventType.LLM_CALL, workspace_id=workspace.id, topic=Topic.usage(), payload=_payload(at), at=at)
    assert "2026-05-31 08:30:05" in render_call(event, ZoneInfo("Asia/Tokyo"))


def _payload(at: datetime) -> dict[str, Any]:
    return {
        "id": 1, "at": at.isoformat(), "agent_id": "finn", "run_id": None, "model": "openai/gpt-4.1", "status": "ok",
        "error": "", "input_tokens": 1, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0,
        "cost": "0.01", "cost_approximate": False, "first_token_ms": 10, "total_ms": 20, "stop_reason": "stop",
        "tool_calls": 0,
    }  # fmt: skip


async def test_the_cap_per_run_on_the_page_and_its_twin(
    db: Database, settings: Settings, logged: tuple[Workspace, list[Any]]
) -> None:
    from app.audit import catalogue

    workspace, (owner, admin, member, _) = logged
    base = f"/w/{workspace.slug}/usage"
    with http_client(create_app(settings)) as client:
        log_in(client, admin.email)
        # A refused run cap is named next to its field, with what was typed, and neither cap changes.
        refused = post_form(client, base, f"{base}/budget", {"monthly_cap": "100", "run_cap": "2.555"})
        assert refused.status_code == 422 and "whole cents" in refused.text and 'value="2.555"' in refused.text
        assert 'aria-describedby="e-run_cap"' in refused.text and 'value="100"' in refused.text
        refused = post_form(client, base, f"{base}/budget", {"monthly_cap": "100", "run_cap": "2000000"})
        assert refused.status_code == 422 and "A run&#39;s cap is between $0 and $1,000,000." in refused.text
        async with db.tenant_session(workspace.id) as session:
            assert await session.get(LlmBudget, 1) is None
        saved = post_form(client, base, f"{base}/budget", {"monthly_cap": "", "run_cap": "$2.50"})
        assert saved.status_code == 303
        page = client.get(base)
        assert "Each run or swarm may spend at most <strong>$2.50</strong>" in page.text
        assert 'name="run_cap"' in page.text and 'value="2.50"' in page.text
    async with db.tenant_session(workspace.id) as session:
        stored = await session.get(LlmBudget, 1)
        entry = await session.scalar(select(AuditEvent).where(AuditEvent.action == "llm.budget_changed"))
    assert stored is not None and (stored.monthly_cap, stored.run_cap) == (None, Decimal("2.50"))
    assert entry is not None
    said = catalogue.sentence(entry.action, entry.actor_label, entry.details)
    assert said.endswith("set each run's LLM budget to $2.50")

    _, token = await make_key(db, workspace, admin, "admin", kind="personal", scope="admin")
    api = f"/api/v1/workspaces/{workspace.slug}/llm/budget"
    auth = {"Authorization": f"Bearer {token}"}
    with http_client(create_app(settings)) as client:
        assert client.get(api, headers=auth).json()["run_cap"] == "2.50"
        # Left out, the run cap stays as it is; a refused one changes neither cap.
        kept = client.put(api, headers=auth, json={"monthly_cap": "40"})
        assert kept.status_code == 200 and kept.json()["run_cap"] == "2.50" and kept.json()["monthly_cap"] == "40.00"
        bad = client.put(api, headers=auth, json={"monthly_cap": "60", "run_cap": "-1"})
        assert bad.status_code == 422 and "run_cap" in bad.text
        assert client.get(api, headers=auth).json()["monthly_cap"] == "40.00"
        cleared = client.put(api, headers=auth, json={"monthly_cap": "40", "run_cap": None})
        assert cleared.status_code == 200 and cleared.json()["run_cap"] is None
        set_again = client.put(api, headers=auth, json={"monthly_cap": "40", "run_cap": "0.75"})
        assert set_again.json()["run_cap"] == "0.75"
