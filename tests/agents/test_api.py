"""The agents API does what the pages do: same services, same refusals, same audit entries."""

from __future__ import annotations

import html
import secrets
import uuid
from typing import Any

import pytest

from app.agents.prompt import assemble_system_prompt
from app.api.principal import ApiPrincipal, Scope, implied
from app.config import Settings
from app.db import Database
from tests.agents.helpers import TEST_MODELS, add_models, agents_in, audit_of
from tests.api.helpers import Team, api_client, error_of, make_team
from tests.helpers import http_client, log_in

BODY: dict[str, Any] = {
    "id": "analyst",
    "name": "Ada",
    "role": "Data analyst",
    "emoji": "🧮",
    "identity": "You count things.",
    "personality": "Dry and exact.",
    "procedures": "1. Read.\n2. Count.",
    "decision_framework": "Prefer more data.",
    "model": "openai/gpt-4.1",
    "tools": ["grep", "read"],
    "pulse": {"enabled": True, "interval_minutes": 60, "blackouts": [{"start": "22:00", "end": "06:00"}]},
}


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    team = await make_team(db, settings, f"agentapi-{secrets.token_hex(2)}")
    await add_models(db, team.workspace.id, *TEST_MODELS)
    return team


def base(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace.slug}"


async def test_create_read_change_clone_delete(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        response = client.post(f"{base(team)}/agents", json=BODY)
        assert response.status_code == 201, response.text
        created = response.json()
        assert created["id"] == "analyst" and created["tools"] == ["read", "grep"]
        assert created["pulse"]["enabled"] is True and created["pulse"]["interval_minutes"] == 60
        assert created["pulse"]["blackouts"] == [{"start": "22:00", "end": "06:00", "label": ""}]
        assert created["pulse"]["wake_max_per_day"] == 12 and created["created_by"] == str(team.member.id)

        one = client.get(f"{base(team)}/agents/analyst").json()
        assert one == {**created, "secrets": []}
        listed = client.get(f"{base(team)}/agents").json()
        assert [agent["id"] for agent in listed["data"]] == ["analyst"] and listed["next_cursor"] is None

        prompt = client.get(f"{base(team)}/agents/analyst/system-prompt").json()
        agent = (await agents_in(db, team.workspace.id))["analyst"]
        assert prompt == {"system_prompt": assemble_system_prompt(agent), "problems": []}

        changed = client.patch(f"{base(team)}/agents/analyst", json={"personality": "Warm.", "model": None})
        assert changed.status_code == 200 and changed.json()["personality"] == "Warm."
        assert changed.json()["model"] is None and changed.json()["identity"] == "You count things."
        unchanged = client.patch(f"{base(team)}/agents/analyst", json={})
        assert unchanged.status_code == 200

        copy = client.post(f"{base(team)}/agents/analyst/clone", json={"id": "analyst-2", "name": "Bea"})
        assert copy.status_code == 201 and copy.json()["name"] == "Bea" and copy.json()["pulse"]["enabled"] is False
        assert client.delete(f"{base(team)}/agents/analyst").status_code == 204
        assert client.get(f"{base(team)}/agents/analyst").status_code == 404
    assert sorted(await agents_in(db, team.workspace.id)) == ["analyst-2"]
    entries = await audit_of(db, team.workspace.id, "agent.")
    assert [(action, actor) for action, _, actor in entries] == [
        ("agent.created", str(team.member.id)),
        ("agent.updated", str(team.member.id)),
        ("agent.cloned", str(team.member.id)),
        ("agent.deleted", str(team.member.id)),
    ]


@pytest.mark.parametrize(
    ("changes", "fields"),
    [
        ({"id": "Bad Id"}, {"id"}),
        ({"identity": "i" * 8_001}, {"identity"}),
        ({"personality": "p" * 12_000, "procedures": "q" * 12_000, "decision_framework": "d" * 9_000}, {"persona"}),
        ({"tools": ["read", "telnet"]}, {"tools"}),
        ({"model": "gpt-4"}, {"model"}),
        (
            {"pulse": {"interval_minutes": 2, "wake_max_per_day": -1}},
            {"pulse.interval_minutes", "pulse.wake_max_per_day"},
        ),
        ({"pulse": {"blackouts": [{"start": "25:00", "end": "01:00"}]}}, {"pulse.blackouts"}),
        ({"name": "  "}, {"name"}),
    ],
)
async def test_bad_input_is_a_422_naming_the_field_and_changes_nothing(
    settings: Settings, db: Database, team: Team, changes: dict[str, Any], fields: set[str]
) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        assert client.post(f"{base(team)}/agents", json=BODY).status_code == 201
        for method, url, body in (
            ("POST", f"{base(team)}/agents", {**BODY, "id": "other", **changes}),
            ("PATCH", f"{base(team)}/agents/analyst", {key: value for key, value in changes.items() if key != "id"}),
        ):
            if method == "PATCH" and fields == {"id"}:
                continue
            response = client.request(method, url, json=body)
            assert response.status_code == 422, (method, response.text)
            error = error_of(response)
            assert {item["field"] for item in error["details"]["errors"]} == fields, error
    assert list(await agents_in(db, team.workspace.id)) == ["analyst"]
    assert (await agents_in(db, team.workspace.id))["analyst"].name == "Ada"
    assert len(await audit_of(db, team.workspace.id, "agent.")) == 1


async def test_a_duplicate_id_is_a_field_error(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        client.post(f"{base(team)}/agents", json=BODY)
        response = client.post(f"{base(team)}/agents", json={**BODY, "name": "Another"})
        assert response.status_code == 422
        assert error_of(response)["details"]["errors"] == [
            {"field": "id", "message": "This workspace already has an agent “analyst”; choose another id."}
        ]
        response = client.post(f"{base(team)}/agents/analyst/clone", json={"id": "analyst"})
        assert response.status_code == 422
    assert (await agents_in(db, team.workspace.id))["analyst"].name == "Ada"


async def test_viewers_and_read_keys_may_read_but_not_change(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        client.post(f"{base(team)}/agents", json=BODY)
    read_key = ApiPrincipal(
        kind="personal_key",
        user=team.owner,
        workspace_id=team.workspace.id,
        scopes=implied(Scope.READ),
        key_id=uuid.uuid4(),
    )
    for client_of in (
        lambda: api_client(settings, team.cookies["viewer"]),
        lambda: api_client(settings, principal=read_key),
    ):
        with client_of() as client:
            assert client.get(f"{base(team)}/agents").status_code == 200
            assert client.get(f"{base(team)}/agents/analyst").status_code == 200
            assert client.get(f"{base(team)}/agent-roster").status_code == 200
            for method, url, body in (
                ("POST", f"{base(team)}/agents", {**BODY, "id": "x"}),
                ("PATCH", f"{base(team)}/agents/analyst", {"name": "Hijacked"}),
                ("POST", f"{base(team)}/agents/analyst/clone", {"id": "copy"}),
                ("DELETE", f"{base(team)}/agents/analyst", None),
                ("POST", f"{base(team)}/agent-roster", {"ids": ["sre"]}),
            ):
                response = client.request(method, url, json=body)
                assert response.status_code == 403, (method, url, response.text)
    assert list(await agents_in(db, team.workspace.id)) == ["analyst"]


async def test_roster_and_preview(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        roster = client.get(f"{base(team)}/agent-roster").json()["data"]
        assert {item["id"] for item in roster} >= {"product-owner", "architect", "sre"}
        added = client.post(f"{base(team)}/agent-roster", json={"ids": ["sre", "architect"]})
        assert added.status_code == 201 and [a["id"] for a in added.json()["data"]] == ["sre", "architect"]
        again = client.post(f"{base(team)}/agent-roster", json={"ids": ["sre"]})
        assert again.status_code == 422 and "Already in this workspace: sre" in again.text
        preview = client.post(
            f"{base(team)}/agent-preview", json={"name": "Zed", "identity": "ZED-IDENTITY", "tools": ["bash"]}
        )
        assert preview.status_code == 200
        assert "ZED-IDENTITY" in preview.json()["system_prompt"] and "`bash`" in preview.json()["system_prompt"]
        assert preview.json()["problems"] == []
        preview = client.post(f"{base(team)}/agent-preview", json={"name": "", "model": "bad", "tools": ["nope"]})
        assert {p["field"] for p in preview.json()["problems"]} == {"name", "model", "tools"}
    assert sorted(await agents_in(db, team.workspace.id)) == ["architect", "sre"]


async def test_the_page_and_the_api_show_the_same_agent(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["member"]) as client:
        client.post(f"{base(team)}/agents", json=BODY)
        one = client.get(f"{base(team)}/agents/analyst").json()
        prompt = client.get(f"{base(team)}/agents/analyst/system-prompt").json()["system_prompt"]
    with http_client(client.app) as browser:
        log_in(browser, team.viewer.email)
        page = browser.get(f"/w/{team.workspace.slug}/agents/analyst")
        assert page.status_code == 200
        for value in (one["name"], one["role"], one["emoji"], one["model"], one["procedures"].split("\n")[0]):
            assert value in page.text
        assert prompt.strip() in html.unescape(page.text)
