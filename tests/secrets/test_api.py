"""The secrets API does what the pages do: admins change, everyone reads masked; no answer holds a value."""

from __future__ import annotations

import secrets
import uuid

import pytest

from app.api.principal import ApiPrincipal, Scope, implied
from app.config import Settings
from app.db import Database
from tests.agents.helpers import audit_of
from tests.api.helpers import Team, api_client, error_of, make_team


@pytest.fixture
async def team(db: Database, settings: Settings) -> Team:
    team = await make_team(db, settings, f"secretapi-{secrets.token_hex(2)}")
    with api_client(settings, team.cookies["owner"]) as client:
        assert client.post(f"{base(team)}/agent-roster", json={"ids": ["sre", "architect"]}).status_code == 201
    return team


def base(team: Team) -> str:
    return f"/api/v1/workspaces/{team.workspace.slug}"


async def test_create_read_change_grant_delete(settings: Settings, db: Database, team: Team) -> None:
    value = f"sk_{secrets.token_hex(20)}"
    with api_client(settings, team.cookies["admin"]) as client:
        made = client.post(f"{base(team)}/secrets", json={"name": "OPENAI_API_KEY", "value": value})
        assert made.status_code == 201, made.text
        body = made.json()
        assert set(body) == {
            "id",
            "name",
            "description",
            "preview",
            "agents",
            "created_at",
            "created_by",
            "updated_at",
            "updated_by",
            "value_updated_at",
        }
        assert (body["name"], body["preview"], body["agents"]) == ("OPENAI_API_KEY", f"sk_…{value[-4:]}", [])
        url = f"{base(team)}/secrets/{body['id']}"
        assert client.get(url).json() == body
        assert client.get(f"{base(team)}/secrets").json()["data"] == [body]

        granted = client.put(f"{url}/grants", json={"agents": ["sre", "architect"]})
        assert granted.status_code == 200
        assert {(a["id"], a["name"]) for a in granted.json()["agents"]} == {("sre", "Beatriz"), ("architect", "Idris")}
        assert client.get(f"{base(team)}/agents/sre").json()["secrets"] == ["OPENAI_API_KEY"]

        patched = client.patch(url, json={"description": "Billing account 2", "value": "v" * 40})
        assert patched.status_code == 200
        assert (patched.json()["description"], patched.json()["preview"]) == ("Billing account 2", "vvv…vvvv")
        assert patched.json()["value_updated_at"] > body["value_updated_at"]
        assert client.delete(url).status_code == 204
        assert client.get(url).status_code == 404
        assert client.get(f"{base(team)}/agents/sre").json()["secrets"] == []
    actions = [action for action, _, _ in await audit_of(db, team.workspace.id, "secret.")]
    assert actions == [
        "secret.created",
        "secret.grants_changed",
        "secret.described",
        "secret.value_replaced",
        "secret.deleted",
    ]


async def test_bad_input_is_a_422_that_changes_nothing(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        made = client.post(f"{base(team)}/secrets", json={"name": "TAKEN", "value": "first-value-0123456789"}).json()
        for body, fields in (
            ({"name": "TAKEN", "value": "second-value"}, {"name"}),
            ({"name": "bad name", "value": "x"}, {"name"}),
            ({"name": "EMPTY", "value": " "}, {"value"}),
            ({"name": "", "value": ""}, {"name", "value"}),
        ):
            response = client.post(f"{base(team)}/secrets", json=body)
            assert response.status_code == 422
            error = error_of(response)
            assert {item["field"] for item in error["details"]["errors"]} == fields
            assert "second-value" not in response.text
        url = f"{base(team)}/secrets/{made['id']}"
        assert client.patch(url, json={"value": ""}).status_code == 422
        assert client.patch(url, json={"description": "x" * 201}).status_code == 422
        response = client.put(f"{url}/grants", json={"agents": ["sre", "ghost"]})
        assert response.status_code == 422 and "ghost" in response.text
        assert client.get(url).json() == made
        assert client.patch(f"{base(team)}/secrets/{uuid.uuid4()}", json={"description": "x"}).status_code == 404
    assert len(await audit_of(db, team.workspace.id, "secret.")) == 1


async def test_only_owners_and_admins_change_secrets(settings: Settings, db: Database, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        made = client.post(f"{base(team)}/secrets", json={"name": "SHARED", "value": "shared-value-0123456789"}).json()
    url = f"{base(team)}/secrets/{made['id']}"
    write_key = ApiPrincipal(
        kind="personal_key",
        user=team.admin,
        workspace_id=team.workspace.id,
        scopes=implied(Scope.WRITE),
        key_id=uuid.uuid4(),
    )
    for client_of in (
        lambda: api_client(settings, team.cookies["member"]),
        lambda: api_client(settings, team.cookies["viewer"]),
        lambda: api_client(settings, principal=write_key),  # an admin's key without admin scope
    ):
        with client_of() as client:
            assert client.get(url).json() == made
            assert client.get(f"{base(team)}/secrets").status_code == 200
            for method, path, body in (
                ("POST", f"{base(team)}/secrets", {"name": "MINE", "value": "x" * 20}),
                ("PATCH", url, {"value": "attacker"}),
                ("PUT", f"{url}/grants", {"agents": ["sre"]}),
                ("DELETE", url, None),
            ):
                response = client.request(method, path, json=body)
                assert response.status_code == 403, (method, path, response.text)
    with api_client(settings, team.cookies["owner"]) as client:
        assert client.get(url).json() == made
