"""Every unsafe route refuses a request without the CSRF token, or with a forged one, or from another site."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
from starlette.routing import BaseRoute, Mount, Route
from starlette.testclient import TestClient

from app.config import Settings
from app.main import create_app

UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


def unsafe_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, str]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from unsafe_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route):
            for method in sorted((route.methods or set()) & UNSAFE):
                yield method, re.sub(r"\{[^}]+\}", "x1", prefix + route.path)


def test_there_are_unsafe_routes_to_check(settings: Settings) -> None:
    assert len(list(unsafe_routes(create_app(settings).routes))) >= 5


@pytest.mark.parametrize("variant", ["missing", "forged", "cross-site"])
def test_every_unsafe_route_needs_the_token(settings: Settings, variant: str) -> None:
    app = create_app(settings)
    failures = []
    with TestClient(app, follow_redirects=False) as client:
        client.get("/login")
        token = client.cookies.get(settings.csrf_cookie)
        assert token
        for method, path in unsafe_routes(app.routes):
            headers: dict[str, str] = {}
            data: dict[str, str] = {"email": "a@example.com", "password": "x" * 20}
            if variant == "forged":
                headers["X-CSRF-Token"] = "A" * 43
                data["csrf_token"] = "A" * 43
            elif variant == "cross-site":
                headers["X-CSRF-Token"] = token
                headers["Origin"] = "https://evil.example"
            response = client.request(method, path, headers=headers, data=data)
            if response.status_code != 403:
                failures.append(f"{method} {path}: {response.status_code}")
    assert failures == []


def test_the_token_lets_a_form_through(settings: Settings) -> None:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        page = client.get("/login")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token
        response = client.post(
            "/login", data={"csrf_token": token.group(1), "email": "nobody@example.com", "password": "wrong"}
        )
        assert response.status_code == 401
        assert "do not match an account" in response.text


def test_nul_characters_are_refused_not_a_500(settings: Settings) -> None:
    with TestClient(create_app(settings), follow_redirects=False) as client:
        for url in ("/login?next=%00", "/w/x/audit?action=a%00b", "/api/v1/workspaces?x=%00"):
            response = client.get(url)
            assert response.status_code == 400, url
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text)
        assert token
        response = client.post(
            "/login", data={"csrf_token": token.group(1), "email": "a\x00@example.com", "password": "x"}
        )
        assert response.status_code == 401
