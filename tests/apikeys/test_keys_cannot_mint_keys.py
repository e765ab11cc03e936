"""Only a signed-in person creates API keys (issue 8, defect 8).

The attack: an API key with the admin scope could create more keys, so whoever leaked a service admin key
had already minted a fresh one that outlived the revocation. Now creating a key needs the browser session
(403 ``session_required`` for every key), while the page and the session-authenticated API still work.
"""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from app.apikeys.models import ApiKey
from app.config import Settings
from app.db import Database
from tests.api.helpers import api_client, error_of, session_cookie
from tests.apikeys.helpers import bearer, make_key
from tests.helpers import count, workspace_with


@pytest.mark.parametrize(("kind", "scope"), [("service", "admin"), ("personal", "admin"), ("personal", "write")])
async def test_an_api_key_cannot_create_api_keys(settings: Settings, db: Database, kind: str, scope: str) -> None:
    workspace, (owner,) = await workspace_with(db, f"mint-{secrets.token_hex(3)}", [])
    key, token = await make_key(db, workspace, owner, "owner", kind=kind, scope=scope)
    before = await count(db, ApiKey, ApiKey.workspace_id == workspace.id)
    with api_client(settings, csrf=False) as client:
        for body in ({"name": "backdoor", "kind": "service", "scope": "admin"}, {"name": "mine", "scope": "read"}):
            answer = client.post(f"/api/v1/workspaces/{workspace.slug}/api-keys", json=body, headers=bearer(token))
            assert answer.status_code == 403, answer.text
            error = error_of(answer)
            assert error["code"] == "session_required"
            assert "signed-in" in error["message"]
            assert "token" not in answer.json()
    assert await count(db, ApiKey, ApiKey.workspace_id == workspace.id) == before
    async with db.public_session() as session:
        names = list(await session.scalars(select(ApiKey.name).where(ApiKey.workspace_id == workspace.id)))
    assert names == [key.name]


async def test_a_signed_in_person_still_creates_keys_through_the_api(settings: Settings, db: Database) -> None:
    workspace, (owner,) = await workspace_with(db, f"mintok-{secrets.token_hex(3)}", [])
    with api_client(settings, await session_cookie(db, settings, owner)) as client:
        answer = client.post(
            f"/api/v1/workspaces/{workspace.slug}/api-keys",
            json={"name": "deploy", "kind": "service", "scope": "write"},
        )
    assert answer.status_code == 201, answer.text
    assert answer.json()["token"].startswith("marid_sk_")
