"""The cross-workspace matrix for API keys: a key of workspace A sees nothing of workspace B, on every route.

The routes come from the application's own route table at run time (every ``/api/v1/workspaces/{slug}...``
route of the JSON API; ``GET /api/v1/workspaces/{slug}`` is always among them, so the matrix is never empty).
The key's owner is even a member of B: a key is bound to its one workspace, whatever its owner may do elsewhere.
"""

from __future__ import annotations

from typing import Any

from starlette.routing import BaseRoute

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.apikeys.helpers import bearer, make_key
from tests.helpers import add_member, http_client, routes_under
from tests.tenants.test_cross_workspace_matrix import _party, fill, snapshot

WORKSPACE_ROUTES = "/api/v1/workspaces/{slug}"
LISTINGS = ("/api/v1/workspaces",)


def workspace_cases(routes: list[BaseRoute]) -> list[tuple[str, str]]:
    return sorted(
        (method, path)
        for path, route in routes_under(routes, "/api/")
        if path.startswith(WORKSPACE_ROUTES)
        for method in (route.methods or {"GET"})
        if method != "HEAD"
    )


def slugs_in(value: Any) -> set[str]:
    """Every ``slug`` anywhere in a JSON document (whatever the listing's envelope looks like)."""
    if isinstance(value, dict):
        found = {value["slug"]} if isinstance(value.get("slug"), str) else set()
        return found.union(*(slugs_in(item) for item in value.values()))
    if isinstance(value, list):
        return set().union(*(slugs_in(item) for item in value))
    return set()


async def test_a_key_of_one_workspace_sees_nothing_of_another(settings: Settings, db: Database) -> None:
    intruder, victim = await _party(db, settings, "keyholder"), await _party(db, settings, "keyvictim")
    await add_member(db, victim.workspace, intruder.user, "admin")
    _, personal = await make_key(db, intruder.workspace, intruder.user, "owner", scope="admin")
    _, service_key = await make_key(db, intruder.workspace, intruder.user, "owner", kind="service", scope="admin")
    app = create_app(settings)
    cases = workspace_cases(app.routes)
    # Every workspace route of the JSON API present today is in the matrix, reads and writes.
    assert {("GET", WORKSPACE_ROUTES), ("PATCH", WORKSPACE_ROUTES)} <= set(cases)
    real = {path for _, path in cases}
    failures: list[str] = []
    with http_client(app) as client:
        for token in (personal, service_key):
            # The keys are good: in their own workspace they work.
            own = fill(WORKSPACE_ROUTES, intruder)
            # An admin key acts as an admin (an owner's too: owner powers need a person at a browser).
            assert client.get(own, headers=bearer(token)).json()["acts_as"] == "admin"
            for listing in LISTINGS:
                if listing in {path for path, _ in routes_under(app.routes, "/api/")}:
                    response = client.get(listing, headers=bearer(token))
                    assert response.status_code == 200, response.text
                    assert slugs_in(response.json()) == {intruder.workspace.slug}, (listing, response.text)
            for method, path in cases:
                before = await snapshot(db, victim.workspace)
                body = {"name": "Hijacked", "role": "viewer", "emails": ["x@example.com"], "require_2fa": True}
                response = client.request(method, fill(path, victim), headers=bearer(token), json=body)
                after = await snapshot(db, victim.workspace)
                if response.status_code != 404:
                    failures.append(f"{method} {path}: {response.status_code} {response.text[:120]}")
                if before != after:
                    failures.append(f"{method} {path}: changed {set(k for k in before if before[k] != after[k])}")
    assert failures == []
    print(f"API key matrix: {len(cases)} cases, {len(real)} real JSON API paths")
