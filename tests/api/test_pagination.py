"""Cursor pagination: opaque cursors, stable order, every item exactly once, malformed cursors refused."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from app.api.errors import ApiError
from app.api.pagination import PageQuery, decode_cursor, encode_cursor, newest_first, paginate
from app.config import Settings
from app.db import Database
from tests.api.helpers import Team, api_client, error_of, make_team
from tests.helpers import add_member, audit, make_user


def test_a_cursor_round_trips_and_is_urlsafe() -> None:
    cursor = encode_cursor((3, "Ada Lovelace", "5f0e"))
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    assert decode_cursor(cursor, (int, str, str)) == (3, "Ada Lovelace", "5f0e")


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        base64.urlsafe_b64encode(b"[1, 2]").decode(),
        base64.urlsafe_b64encode(json.dumps({"k": [1]}).encode()).decode(),  # wrong length
        base64.urlsafe_b64encode(json.dumps({"k": ["1", "a"]}).encode()).decode(),  # wrong type
        base64.urlsafe_b64encode(json.dumps({"k": [True, "a"]}).encode()).decode(),  # bool is not an int
        base64.urlsafe_b64encode(json.dumps({"k": [2**70, "a"]}).encode()).decode(),  # beyond 64 bits
    ],
)
def test_a_malformed_cursor_is_a_422(cursor: str) -> None:
    with pytest.raises(ApiError) as raised:
        decode_cursor(cursor, (int, str))
    assert raised.value.status == 422
    assert raised.value.details["errors"][0]["field"] == "cursor"


def test_paginate_walks_every_item_once_in_order() -> None:
    items = [(index % 3, f"name-{index}") for index in range(11)]
    expected = sorted(items)
    seen: list[tuple[int, str]] = []
    cursor = None
    while True:
        page = paginate(items, lambda item: item, (int, str), PageQuery(limit=4, cursor=cursor))
        seen += page.items
        if page.next_cursor is None:
            break
        cursor = page.next_cursor
    assert seen == expected


def test_paginate_is_stable_when_items_come_and_go() -> None:
    items = [(0, name) for name in "abcdef"]
    first = paginate(items, lambda item: item, (int, str), PageQuery(limit=3))
    assert [name for _, name in first.items] == ["a", "b", "c"]
    # "b" is deleted and "bb" added before the next page is fetched: no repeats, no gaps after the cursor.
    changed = [item for item in items if item[1] != "b"] + [(0, "bb"), (0, "cc")]
    second = paginate(changed, lambda item: item, (int, str), PageQuery(limit=10, cursor=first.next_cursor))
    assert [name for _, name in second.items] == ["cc", "d", "e", "f"]
    assert second.next_cursor is None


def test_an_exact_last_page_has_no_next_cursor() -> None:
    page = paginate([1, 2, 3], lambda item: (item,), (int,), PageQuery(limit=3))
    assert page.items == [1, 2, 3] and page.next_cursor is None


def test_newest_first_orders_later_times_first() -> None:
    moment = datetime(2026, 1, 1, tzinfo=UTC)
    assert newest_first(moment + timedelta(microseconds=1)) < newest_first(moment)


@pytest.fixture(scope="module")
async def big_team(db: Database, settings: Settings) -> Team:
    team = await make_team(db, settings, "pages")
    for index in range(7):
        await add_member(db, team.workspace, await make_user(db, f"pages-extra{index}", name="Same Name"), "member")
    for index in range(12):
        await audit(db, settings, team.workspace.id, "settings.changed", team.owner, {"n": index})
    return team


def _walk(client: object, url: str, limit: int, **params: str) -> list[dict[str, object]]:
    items: list[dict[str, object]] = []
    cursor = None
    for _ in range(100):
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        response = client.get(url, params=query)  # type: ignore[attr-defined]
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"data", "next_cursor"}
        assert len(body["data"]) <= limit
        items += body["data"]
        cursor = body["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the listing never ended")


def test_members_page_through_in_the_pages_order(settings: Settings, big_team: Team) -> None:
    with api_client(settings, big_team.cookies["owner"]) as client:
        url = f"/api/v1/workspaces/{big_team.workspace.slug}/members"
        whole = client.get(url, params={"limit": "100"}).json()
        assert whole["next_cursor"] is None
        walked = _walk(client, url, 2)
    assert walked == whole["data"]
    assert len(walked) == 11
    assert walked[0]["role"] == "owner"
    # Seven members share one name: the user id breaks the tie, so none is lost or repeated.
    assert len({item["user_id"] for item in walked}) == 11


def test_audit_pages_newest_first_with_filters(settings: Settings, big_team: Team) -> None:
    with api_client(settings, big_team.cookies["owner"]) as client:
        url = f"/api/v1/workspaces/{big_team.workspace.slug}/audit"
        walked = _walk(client, url, 5, action="settings.changed", actor=str(big_team.owner.id))
        assert [item["details"] for item in walked] == [{"n": n} for n in reversed(range(12))]
        ids = [item["id"] for item in walked]
        assert ids == sorted(ids, reverse=True)
        everything = _walk(client, url, 100)
        assert len(everything) == 16


def test_a_malformed_cursor_over_http_is_a_422(settings: Settings, big_team: Team) -> None:
    with api_client(settings, big_team.cookies["owner"]) as client:
        for path in ("members", "audit", "invitations", "api-keys"):
            response = client.get(f"/api/v1/workspaces/{big_team.workspace.slug}/{path}", params={"cursor": "x!"})
            assert response.status_code == 422, path
            assert error_of(response)["details"]["errors"][0]["field"] == "cursor"
        # A cursor of one listing does not fit another (different key shapes).
        members = client.get(f"/api/v1/workspaces/{big_team.workspace.slug}/members", params={"limit": "1"})
        cursor = members.json()["next_cursor"]
        response = client.get(f"/api/v1/workspaces/{big_team.workspace.slug}/audit", params={"cursor": cursor})
        assert response.status_code == 422
