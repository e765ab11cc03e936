"""Every unsafe page route, fed garbage by a signed-in owner: never a 500, always a real page.

The routes come from the application's route table, so a new form is covered the day it is added. Each
route gets an empty form, absurdly long values, repeated fields, NUL characters and unknown ids. (The JSON
API gets the same treatment from schemathesis in tests/api.)
"""

from __future__ import annotations

from collections.abc import Iterator

from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app
from tests.web.pages import fill, page_get_routes

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
# Ending the test's own session would turn every later call into a redirect to /login.
SKIP = {"/logout"}
FIELDS = (
    "name", "slug", "email", "emails", "password", "display_name", "role", "code", "required", "next",
    "current_password", "new_password", "confirm", "issuer", "client_id", "client_secret", "domain",
    "default_role", "enabled", "enforce_sso", "managed_accounts", "confirm_managed", "kind", "scope", "expires",
    "expires_on", "confirm_name", "new_owner", "action", "actor", "from", "to", "require_2fa", "form_id", "identifier",
    "id", "emoji", "model", "identity", "personality", "procedures", "decision_framework", "tools", "tools_form",
    "template", "pulse_form", "pulse_enabled", "pulse_interval_minutes", "pulse_blackouts", "roster", "agents",
    "value", "description",
)  # fmt: skip


def unsafe_page_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):
            if not (prefix + route.path).startswith("/api"):
                yield from unsafe_page_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route) and prefix + route.path not in SKIP:
            for method in sorted((route.methods or set()) & UNSAFE):
                yield method, prefix + route.path


def garbage_forms() -> list[dict[str, str | list[str]]]:
    return [
        {},
        {field: "x" * 5000 for field in FIELDS},
        {field: ["a", "b"] for field in FIELDS},
        {field: "nul\x00byte" for field in FIELDS},
        {field: "<script>alert(1)</script>'\"" for field in FIELDS},
        {field: "9" * 40 for field in FIELDS},
    ]


async def test_no_unsafe_page_route_answers_500(
    settings: Settings, owner_client: tuple[TestClient, dict[str, str]]
) -> None:
    client, known = owner_client
    routes = list(unsafe_page_routes(create_app(settings).routes))
    assert len(routes) >= 20
    failures: list[str] = []

    for method, path in routes:
        url = fill(path, known)
        for form in garbage_forms():
            token = client.cookies.get(settings.csrf_cookie) or ""
            response = client.request(method, url, data={"csrf_token": token, **form})
            if response.status_code >= 500 or "Traceback" in response.text:
                failures.append(f"{method} {path} with {sorted(form)[:3]}…: {response.status_code}")
    assert failures == []


async def test_no_page_answers_500_to_garbage_in_the_address(
    settings: Settings, owner_client: tuple[TestClient, dict[str, str]]
) -> None:
    client, known = owner_client
    paths = list(page_get_routes(create_app(settings).routes))
    assert len(paths) >= 20
    failures: list[str] = []
    for path in paths:
        url = fill(path, known)
        for params in (
            {field: "x" * 600 for field in FIELDS},
            {field: ["1", "2"] for field in FIELDS},
            {field: "9999-99-99" for field in FIELDS},
            {field: "../../etc/passwd" for field in FIELDS},
        ):
            response = client.get(url, params=params)
            if response.status_code >= 500 or "Traceback" in response.text:
                failures.append(f"GET {path}: {response.status_code}")
    assert failures == []
