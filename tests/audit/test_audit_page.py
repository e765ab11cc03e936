"""The audit log page over HTTP: who may read it, filters, cursor paging, and the htmx fragment."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from starlette.testclient import TestClient

from app.audit.models import AuditEvent
from app.auth.models import User
from app.db import Database
from app.tenants.models import Workspace
from tests.helpers import add_member, log_in, make_user, make_workspace


@dataclass
class Log:
    workspace: Workspace
    owner: User
    member: User
    base: str


DAY = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


@pytest.fixture
async def log(db: Database) -> Log:
    owner, member = await make_user(db, "auditor", name="Olive Owner"), await make_user(db, "worker", name="")
    workspace = await make_workspace(db, owner, "audit")
    await add_member(db, workspace, member, "member")
    async with db.tenant_session(workspace.id) as session:
        owner_id, member_id = str(owner.id), str(member.id)
        session.add_all(
            [
                AuditEvent(
                    at=DAY - timedelta(days=2), action="member.invited", actor_id=owner_id, ip="203.0.113.1",
                    details={"email": "x@example.com", "role": "viewer"},
                ),
                AuditEvent(
                    at=DAY - timedelta(days=1), action="auth.login_failed", actor_id=member_id, ip="198.51.100.9",
                    details={},
                ),
                AuditEvent(
                    at=DAY, action="member.role_changed", actor_id=owner_id, ip="203.0.113.1",
                    details={"email": "x@example.com", "from": "viewer", "to": "member"},
                ),
                AuditEvent(
                    at=DAY + timedelta(days=1), action="settings.changed", actor_id=owner_id, ip="203.0.113.1",
                    details={"name": {"from": "Old", "to": "New <b>"}},
                ),
            ]
        )  # fmt: skip
    return Log(workspace, owner, member, f"/w/{workspace.slug}/audit")


def actions(html: str) -> list[str]:
    return re.findall(r'<tr data-action="([^"]+)"', html)


def get(client: TestClient, url: str, **params: Any) -> Any:
    return client.get(url, params={key: str(value) for key, value in params.items()})


async def test_only_owners_and_admins_read_the_log(client: TestClient, db: Database, log: Log) -> None:
    assert client.get(log.base).status_code == 303  # signed out: to the login page
    log_in(client, log.member.email)
    assert client.get(log.base).status_code == 403
    stranger = await make_user(db, "stranger")
    client.cookies.clear()
    log_in(client, stranger.email)
    assert client.get(log.base).status_code == 404


async def test_newest_first_with_people_labels(client: TestClient, log: Log) -> None:
    log_in(client, log.owner.email)
    page = client.get(log.base)
    assert page.status_code == 200
    # The sign-in just now is an account event (the owner's own security log), not a workspace one; the seeded
    # rows (an old sign-in among them, as the log kept them before) are shown newest first.
    assert actions(page.text) == [
        "settings.changed", "member.role_changed", "auth.login_failed", "member.invited",
    ]  # fmt: skip
    assert "Sign-in failed" in page.text and "Changed a member&#39;s role" in page.text
    assert f"Olive Owner &lt;{log.owner.email}&gt;" in page.text
    assert "viewer → member; email: x@example.com" in page.text
    assert "name: Old → New &lt;b&gt;" in page.text, "details are escaped"
    assert "2026-03-11 12:00:00" in page.text and "203.0.113.1" in page.text


async def test_filters(client: TestClient, log: Log) -> None:
    log_in(client, log.owner.email)
    assert actions(get(client, log.base, action="member.role_changed").text) == ["member.role_changed"]
    assert actions(get(client, log.base, actor=log.member.id).text) == ["auth.login_failed"]
    by_owner = actions(get(client, log.base, actor=log.owner.id).text)
    assert "auth.login_failed" not in by_owner and "member.invited" in by_owner
    assert actions(get(client, log.base, **{"from": "2026-03-09", "to": "2026-03-10"}).text) == [
        "member.role_changed",
        "auth.login_failed",
    ]
    assert actions(get(client, log.base, **{"to": "2026-03-08"}).text) == ["member.invited"]
    combined = get(client, log.base, action="member.invited", actor=log.member.id)
    assert actions(combined.text) == [] and "No matching entries" in combined.text


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"from": "yesterday"}, "must be a date"),
        ({"from": "2026-03-10", "to": "2026-03-01"}, "must not be before"),
        ({"actor": "'; DROP TABLE users; --"}, "Choose a member"),
        ({"before": "-1"}, "page link is not valid"),
    ],
)
async def test_bad_filters_get_a_clear_message(
    client: TestClient, log: Log, params: dict[str, str], message: str
) -> None:
    log_in(client, log.owner.email)
    page = get(client, log.base, **params)
    assert page.status_code == 400
    assert message in page.text and actions(page.text) == []


async def test_cursor_paging(client: TestClient, db: Database, log: Log) -> None:
    async with db.tenant_session(log.workspace.id) as session:
        session.add_all(AuditEvent(action="test.bulk", details={"n": n}) for n in range(60))
    log_in(client, log.owner.email)
    first = get(client, log.base, action="test.bulk")
    assert len(actions(first.text)) == 50
    older = re.search(r'href="([^"]*before=\d+[^"]*)"[^>]*rel="next"', first.text)
    assert older, "an Older link"
    second = client.get(older.group(1).replace("&amp;", "&"))
    assert len(actions(second.text)) == 10 and "action=test.bulk" in older.group(1)
    assert 'rel="next"' not in second.text and ">Newest<" in second.text
    numbers = re.findall(r"n: (\d+)", first.text + second.text)
    assert sorted(map(int, numbers)) == list(range(60)), "every event exactly once"
    assert [int(n) for n in numbers] == sorted(map(int, numbers), reverse=True), "newest first"


async def test_htmx_gets_only_the_results(client: TestClient, log: Log) -> None:
    log_in(client, log.owner.email)
    headers = {"HX-Request": "true", "HX-Target": "audit-results"}
    fragment = client.get(log.base, params={"action": "member.invited"}, headers=headers)
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="audit-results">')
    assert "<form" not in fragment.text and "<html" not in fragment.text
    assert actions(fragment.text) == ["member.invited"]
    # Errors reach the form too (htmx does not swap 4xx answers).
    bad = client.get(log.base, params={"from": "nope"}, headers=headers)
    assert bad.status_code == 200 and "must be a date" in bad.text
    # A history restore needs the whole page.
    restore = client.get(log.base, headers={"HX-Request": "true", "HX-History-Restore-Request": "true"})
    assert "<html" in restore.text
