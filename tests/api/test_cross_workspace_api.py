"""Every ``/api/v1/workspaces/{slug}...`` route, every method, every kind of caller: another workspace answers 404
with the JSON error body, and nothing in it changes.

The routes come from the application's route table (so a new API route is covered the day it is added), the
identifiers are the other workspace's real ones (its owner, a pending invitation, an API key), and each body
is valid for its operation, so only the workspace check stands between the caller and a change.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select, text
from starlette.routing import BaseRoute, Mount, Route

from app.agents import service as agents
from app.api.operations import Operation
from app.api.principal import ApiPrincipal, Scope, implied
from app.apikeys import service as keys
from app.apikeys.models import ApiKey
from app.auth.models import UserSession
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.secrets.service import create_secret
from app.security.secrets import SecretsService
from app.tenants.context import person_actor
from app.tenants.models import Invitation
from app.tenants.permissions import Role
from tests.api.helpers import api_client, error_of, session_cookie
from tests.helpers import make_user
from tests.tenants.test_cross_workspace_matrix import Party, _party, fill, snapshot

PREFIX = "/api/v1/workspaces/{slug}"
# A valid body for every operation that takes one: the request would succeed in the caller's own workspace.
BODIES: dict[str, dict[str, Any]] = {
    "WorkspacePatch": {"name": "Taken over", "require_2fa": False},
    "MemberPatch": {"role": "viewer"},
    "InvitationCreate": {"emails": ["someone@example.com"], "role": "admin"},
    "ApiKeyCreate": {"name": "intruder", "kind": "service", "scope": "admin"},
    "AgentCreate": {"id": "intruder", "name": "Intruder", "tools": ["bash"]},
    "AgentPatch": {"name": "Taken over", "tools": ["bash"]},
    "AgentPreview": {"name": "Peek"},
    "AgentClone": {"id": "intruder-copy"},
    "RosterAdd": {"ids": ["architect"]},
    "SecretCreate": {"name": "INTRUDER", "value": "intruder-value"},
    "SecretPatch": {"description": "taken over", "value": "intruder-value"},
    "SecretGrants": {"agents": ["sre"]},
    "ProviderCreate": {"preset": "openai", "api_key": "sk-intruder-0123456789", "slug": "stolen"},
    "ProviderPatch": {"base_url": "https://evil.example/v1", "api_key": "sk-intruder-0123456789"},
    "ModelCreate": {"name": "free-model", "input_price": "0", "output_price": "0"},
    "ModelPatch": {"input_price": "0", "output_price": "0"},
    "BudgetIn": {"monthly_cap": "1000000"},
    "SwarmStart": {"agent_id": "sre", "tasks": [{"key": "a", "title": "A", "execution_prompt": "Do a."}]},
    "SwarmLimitsIn": {"max_tasks": 1, "max_concurrent": 1, "workspace_concurrency": 1},
    "PipelineSource": {"yaml": "id: intruder\nname: Intruder\nversion: 1\nagents: []\nsteps: []\n"},
    "PipelineDraft": {"yaml": "id: intruder\n"},
    "PipelineStarterAdd": {"starter": "engineering"},
    "RunStart": {"pipeline": "engineering", "task": "Intrude"},
    "StepRestart": {"context": "intruder context"},
    "Injection": {"text": "intruder context"},
}


def api_workspace_routes(routes: list[BaseRoute], prefix: str = "") -> Iterator[tuple[str, Route]]:
    for route in routes:
        if isinstance(route, Mount):
            yield from api_workspace_routes(list(route.routes), prefix + route.path)
        elif isinstance(route, Route) and (prefix + route.path).startswith(PREFIX):
            yield prefix + route.path, route


def cases(settings: Settings) -> list[tuple[str, str, Operation]]:
    found = []
    for path, route in api_workspace_routes(create_app(settings).routes):
        for method in sorted((route.methods or set()) - {"HEAD"}):
            found.append((method, path, route.endpoint.operations[method]))  # type: ignore[attr-defined]
    return found


async def victim_state(db: Database, victim: Party) -> dict[str, Any]:
    """The matrix test's snapshot, plus what a revocation changes without changing a row count."""
    state = await snapshot(db, victim.workspace)
    async with db.public_session() as session:
        state["invitations"] = list(
            await session.execute(
                select(Invitation.id, Invitation.revoked_at).where(Invitation.workspace_id == victim.workspace.id)
            )
        )
        state["api_keys"] = list(
            await session.execute(
                select(ApiKey.id, ApiKey.revoked_at).where(ApiKey.workspace_id == victim.workspace.id)
            )
        )
        state["sessions"] = list(
            await session.scalars(select(UserSession.id).where(UserSession.user_id == victim.user.id))
        )
    return state


@pytest.fixture(scope="module")
async def parties(
    settings: Settings, db: Database, secrets_service: SecretsService
) -> tuple[Party, Party, dict[str, str]]:
    intruder, victim = await _party(db, settings, "api-intruder"), await _party(db, settings, "api-victim")
    # An admin of both workspaces: a key they made in the intruder's workspace must not reach the victim's.
    admin = await make_user(db, "api-both-admin")
    async with db.public_session() as session:
        for workspace in (victim.workspace, intruder.workspace):
            await session.execute(
                text("INSERT INTO public.memberships (workspace_id, user_id, role) VALUES (:w, :u, 'admin')"),
                {"w": workspace.id, "u": admin.id},
            )
        await session.flush()
        invitation = Invitation(
            workspace_id=victim.workspace.id,
            email="pending@example.com",
            role="member",
            token_hash=uuid.uuid4().hex * 2,
            invited_by=victim.user.id,
            expires_at=text("now() + interval '7 days'"),
        )
        session.add(invitation)
        key, _ = await keys.create_key(
            session,
            workspace_id=victim.workspace.id,
            actor=keys.Actor(user_id=victim.user.id, role=Role.OWNER),
            name="victim's key",
            kind="service",
            scope="admin",
            expires_at=None,
        )
        await session.flush()
        ids = {"user_id": str(admin.id), "invitation_id": str(invitation.id), "key_id": str(key.id)}
    # An agent and a secret of the victim's, named by their real ids.
    async with db.tenant_session(victim.workspace.id) as tenant:
        owner = person_actor(victim.user)
        await agents.add_from_roster(tenant, owner, ["sre"])
        secret = await create_secret(tenant, secrets_service, victim.workspace.id, owner, name="VICTIM", value="v" * 32)
    ids |= {"agent": "sre", "secret_id": str(secret.id)}
    intruder.user_both = admin  # type: ignore[attr-defined]
    return intruder, victim, ids


def _url(path: str, victim: Party, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    return fill(path, victim)


def test_every_api_workspace_route_is_workspace_scoped(settings: Settings) -> None:
    found = list(api_workspace_routes(create_app(settings).routes))
    assert len(found) >= 6
    assert [path for path, route in found if not getattr(route.endpoint, "workspace_scoped", False)] == []


def test_every_body_model_has_an_example(settings: Settings) -> None:
    missing = {op.body.__name__ for _, _, op in cases(settings) if op.body and op.body.__name__ not in BODIES}
    assert missing == set()


def _callers(intruder: Party) -> dict[str, ApiPrincipal | None]:
    """The intruder's session, and keys of the intruder's workspace with every power there is."""
    return {
        "session": None,
        "personal key": ApiPrincipal(
            kind="personal_key", user=intruder.user, workspace_id=intruder.workspace.id,
            scopes=implied(Scope.ADMIN), key_id=uuid.uuid4(),
        ),
        "key of an admin of both": ApiPrincipal(
            kind="personal_key", user=intruder.user_both, workspace_id=intruder.workspace.id,  # type: ignore[attr-defined]
            scopes=implied(Scope.ADMIN), key_id=uuid.uuid4(),
        ),
        "service key": ApiPrincipal(
            kind="service_key", user=None, workspace_id=intruder.workspace.id,
            scopes=implied(Scope.ADMIN), key_id=uuid.uuid4(),
        ),
    }  # fmt: skip


@pytest.mark.parametrize("caller", ["session", "personal key", "key of an admin of both", "service key"])
async def test_another_workspace_is_invisible_on_every_api_route(
    settings: Settings, db: Database, parties: tuple[Party, Party, dict[str, str]], caller: str
) -> None:
    intruder, victim, ids = parties
    principal = _callers(intruder)[caller]
    failures: list[str] = []
    with api_client(settings, intruder.cookie if principal is None else None, principal=principal) as client:
        # Their own workspace works: the credentials are real.
        assert client.get(f"/api/v1/workspaces/{intruder.workspace.slug}/members").status_code == 200
        for method, path, operation in cases(settings):
            before = await victim_state(db, victim)
            body = BODIES[operation.body.__name__] if operation.body else None
            response = client.request(method, _url(path, victim, ids), json=body)
            after = await victim_state(db, victim)
            if response.status_code != 404:
                failures.append(f"{method} {path}: {response.status_code} {response.text[:200]}")
            else:
                error_of(response)
            if before != after:
                failures.append(f"{method} {path}: changed {[k for k in before if before[k] != after[k]]}")
    assert failures == []


async def test_another_users_session_cannot_be_ended(
    settings: Settings, db: Database, parties: tuple[Party, Party, dict[str, str]]
) -> None:
    intruder, victim, _ = parties
    await session_cookie(db, settings, victim.user)
    before = await victim_state(db, victim)
    with api_client(settings, intruder.cookie) as client:
        for session_id in before["sessions"]:
            response = client.delete(f"/api/v1/me/sessions/{session_id}")
            assert response.status_code == 404
            error_of(response)
        listed = {row["id"] for row in client.get("/api/v1/me/sessions").json()["data"]}
    assert listed.isdisjoint(str(session_id) for session_id in before["sessions"])
    assert await victim_state(db, victim) == before
