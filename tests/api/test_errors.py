"""Every failure of the API has the same JSON body: 401, 403 (CSRF, scope, role), 404, 405, 413, 415, 422."""

from __future__ import annotations

import pytest
from sqlalchemy import update

from app.api.operations import MAX_BODY_BYTES
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.tenants.models import Workspace
from tests.api.helpers import Team, api_client, error_of, make_team, session_cookie


@pytest.fixture(scope="module")
async def team(db: Database, settings: Settings) -> Team:
    return await make_team(db, settings, "errors")


def test_anonymous_calls_get_401(settings: Settings) -> None:
    with api_client(settings) as client:
        for method, path in [("GET", "/api/v1/me"), ("GET", "/api/v1/workspaces/anything/members")]:
            response = client.request(method, path)
            assert response.status_code == 401
            assert error_of(response)["code"] == "authentication_required"
            assert response.headers["www-authenticate"].startswith("Bearer")


def test_a_bad_bearer_key_never_falls_back_to_the_session_cookie(settings: Settings, team: Team) -> None:
    # The CSRF check skips Bearer requests, so a cookie must not count when the key is bad.
    with api_client(settings, team.cookies["owner"], csrf=False) as client:
        response = client.delete(
            f"/api/v1/workspaces/{team.workspace.slug}/members/{team.viewer.id}",
            headers={"Authorization": "Bearer not-a-key"},
        )
        assert response.status_code == 401
        assert error_of(response)["code"] == "invalid_api_key"


def test_unknown_paths_and_methods(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        response = client.get("/api/v1/nothing-here")
        assert response.status_code == 404
        error_of(response)
        response = client.put("/api/v1/me")
        assert response.status_code == 405
        assert error_of(response)["code"] == "method_not_allowed"
        assert "GET" in response.headers["allow"]


def test_another_workspace_or_a_missing_one_is_404(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        response = client.get("/api/v1/workspaces/no-such-workspace-here")
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"
        response = client.get(f"/api/v1/workspaces/{team.workspace.slug}/members/not-a-uuid")
        assert response.status_code == 405  # GET is not an operation of that path
        response = client.delete(f"/api/v1/workspaces/{team.workspace.slug}/members/not-a-uuid")
        assert response.status_code == 404
        assert error_of(response)["code"] == "not_found"


def test_a_role_without_the_permission_gets_403(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["viewer"]) as client:
        response = client.get(f"/api/v1/workspaces/{team.workspace.slug}/audit")
        assert response.status_code == 403
        error = error_of(response)
        assert error["code"] == "forbidden"
        assert error["details"] == {"required_permission": "audit.view", "role": "viewer"}


def test_a_body_too_large_is_413(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        url = f"/api/v1/workspaces/{team.workspace.slug}"
        body = b'{"name": "' + b"x" * MAX_BODY_BYTES + b'"}'
        response = client.patch(url, content=body, headers={"Content-Type": "application/json"})
        assert response.status_code == 413
        assert error_of(response)["code"] == "payload_too_large"


def test_a_body_that_is_not_json_is_415_or_422(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        url = f"/api/v1/workspaces/{team.workspace.slug}"
        response = client.patch(url, content=b"name=x", headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code == 415
        assert error_of(response)["code"] == "unsupported_media_type"
        response = client.patch(url, content=b"{not json", headers={"Content-Type": "application/json"})
        assert response.status_code == 422
        assert error_of(response)["details"]["errors"][0]["field"] == "body"


def test_invalid_input_is_422_with_each_field_named(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        base = f"/api/v1/workspaces/{team.workspace.slug}"
        response = client.patch(base, json={"name": 5, "colour": "red"})
        assert response.status_code == 422
        error = error_of(response)
        assert error["code"] == "validation_error"
        fields = {item["field"] for item in error["details"]["errors"]}
        assert fields == {"name", "colour"}
        assert all(set(item) == {"field", "message"} for item in error["details"]["errors"])

        response = client.get(f"{base}/members", params={"limit": "0"})
        assert response.status_code == 422
        assert error_of(response)["details"]["errors"][0]["field"] == "limit"
        response = client.get(f"{base}/audit", params={"from": "yesterday", "to": "2026-13-01"})
        assert {item["field"] for item in error_of(response)["details"]["errors"]} == {"from", "to"}
        response = client.get(f"{base}/audit", params={"from": "2026-02-01", "to": "2026-01-01"})
        assert response.status_code == 422
        assert error_of(response)["details"]["errors"] == [
            {"field": "to", "message": "“To” must not be before “From”."}
        ]
        # Unknown query parameters are ignored.
        assert client.get(f"{base}/members", params={"colour": "red"}).status_code == 200


def test_a_business_rule_refusal_is_422_with_the_pages_message(settings: Settings, team: Team) -> None:
    with api_client(settings, team.cookies["owner"]) as client:
        url = f"/api/v1/workspaces/{team.workspace.slug}/members/{team.owner.id}"
        response = client.delete(url)
        assert response.status_code == 422
        error = error_of(response)
        assert error["code"] == "invalid_request"
        assert error["message"] == "To remove yourself, use “Leave workspace”."


def test_cookie_authenticated_unsafe_calls_need_the_csrf_header(settings: Settings, team: Team) -> None:
    url = f"/api/v1/workspaces/{team.workspace.slug}"
    with api_client(settings, team.cookies["owner"], csrf=False) as client:
        response = client.patch(url, json={"name": "Renamed without CSRF"})
        assert response.status_code == 403
        error_of(response)
        response = client.patch(url, json={"name": "Renamed from elsewhere"},
                                headers={"X-CSRF-Token": client.cookies[settings.csrf_cookie],
                                         "Origin": "https://evil.example"})  # fmt: skip
        assert response.status_code == 403
        response = client.patch(url, json={"name": team.workspace.name},
                                headers={"X-CSRF-Token": client.cookies[settings.csrf_cookie]})  # fmt: skip
        assert response.status_code == 200, response.text
        # Reading needs no token.
        assert client.get(url).status_code == 200


async def test_the_pages_account_rules_hold_for_the_api(settings: Settings, db: Database) -> None:
    team = await make_team(db, settings, "rules")
    async with db.public_session() as session:
        await session.execute(update(Workspace).where(Workspace.id == team.workspace.id).values(require_2fa=True))
        await session.execute(update(User).where(User.id == team.viewer.id).values(email_verified_at=None))
    unverified = await session_cookie(db, settings, team.viewer)
    with api_client(settings, team.cookies["member"]) as client:
        # Like the pages, a workspace that requires 2FA sends members without it to enrolment first.
        response = client.get(f"/api/v1/workspaces/{team.workspace.slug}/members")
        assert response.status_code == 403
        assert error_of(response)["code"] == "two_factor_required"
        assert client.get("/api/v1/me").status_code == 200
    with api_client(settings, unverified) as client:
        response = client.get("/api/v1/me")
        assert response.status_code == 403
        assert error_of(response)["code"] == "email_unverified"
