"""Every page, opened by each role of the workspace: a page or a clear refusal, never a 500."""

from __future__ import annotations

import secrets

import pytest

from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.helpers import http_client, log_in, workspace_with
from tests.web.pages import fill, page_get_routes


@pytest.mark.parametrize("role", ["admin", "member", "viewer"])
async def test_every_page_for_every_role(settings: Settings, db: Database, role: str) -> None:
    workspace, (owner, person) = await workspace_with(db, f"roles-{secrets.token_hex(3)}", [role])
    known = {"slug": workspace.slug, "user_id": str(owner.id)}
    statuses: dict[str, int] = {}
    with http_client(create_app(settings)) as client:
        log_in(client, person.email)
        for path in page_get_routes(create_app(settings).routes):
            for htmx in (False, True):
                response = client.get(fill(path, known), headers={"HX-Request": "true"} if htmx else {})
                statuses[f"{path}{' (htmx)' if htmx else ''}"] = response.status_code
    assert not {path: status for path, status in statuses.items() if status >= 500}
    # Everyone sees the dashboard and the member list; only admins see the audit log.
    assert statuses["/w/{slug}"] == statuses["/w/{slug}/members"] == 200
    assert statuses["/w/{slug}/audit"] == (200 if role == "admin" else 403)
