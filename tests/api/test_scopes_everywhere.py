"""Every operation of the JSON API, from its registry: a key without the operation's scope is refused with
403 ``insufficient_scope`` before anything happens, and a key with it gets past the scope check."""

from __future__ import annotations

import re
import secrets
import uuid

from sqlalchemy import func, select
from starlette.testclient import TestClient

import app.routes  # noqa: F401 - registers every operation
from app.api.operations import REGISTRY
from app.api.principal import SCOPE_ORDER, Scope
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.main import create_app
from tests.apikeys.helpers import make_key
from tests.helpers import workspace_with


def url_for(path: str, slug: str) -> str:
    return "/api/v1" + re.sub(r"\{([^}]+)\}", lambda m: slug if m.group(1) == "slug" else str(uuid.uuid4()), path)


async def audit_rows(db: Database, workspace_id: str) -> int:
    async with db.tenant_session(workspace_id) as session:
        return int(await session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


async def test_each_operation_needs_its_scope(settings: Settings, db: Database) -> None:
    workspace, (owner,) = await workspace_with(db, f"scopes-{secrets.token_hex(3)}", [])
    tokens: dict[tuple[str, Scope], str] = {}
    for kind in ("service", "personal"):
        for scope in SCOPE_ORDER:
            _, tokens[kind, scope] = await make_key(db, workspace, owner, "owner", kind=kind, scope=scope.value)
    # Operations for people take the owner's personal keys; the rest take service keys; session-only ones none.
    operations = [op for op in REGISTRY if op.actors in ("any", "user")]
    assert len([op for op in operations if op.scope is not Scope.READ]) >= 5
    failures: list[str] = []
    with TestClient(create_app(settings), follow_redirects=False) as client:
        for op in operations:
            url = url_for(op.path, workspace.slug)
            for scope in SCOPE_ORDER:
                before = await audit_rows(db, workspace.id)
                token = tokens["service" if op.actors == "any" else "personal", scope]
                response = client.request(op.method, url, headers={"Authorization": f"Bearer {token}"}, json={})
                refused = response.status_code == 403 and response.json()["error"]["code"] == "insufficient_scope"
                allowed = SCOPE_ORDER.index(scope) >= SCOPE_ORDER.index(op.scope)
                if allowed == refused:
                    failures.append(f"{op.method} {op.path} with {scope.value}: {response.status_code}")
                if refused and await audit_rows(db, workspace.id) != before:
                    failures.append(f"{op.method} {op.path} with {scope.value}: refused but audited a change")
    assert failures == []
