"""The secrets service against a real workspace: values sealed under the workspace's data key and bound to
their row, masked previews, replace, describe, delete, grants; audit entries name secrets, never values."""

from __future__ import annotations

import json
import secrets

import pytest
from sqlalchemy import select, text

from app.agents import service as agents
from app.agents.draft import AgentDraft
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.errors import Invalid, NotFound
from app.secrets import service
from app.secrets.models import SecretGrant, WorkspaceSecret
from app.security.crypto import DecryptionError
from app.security.secrets import SecretsService
from app.tenants.models import Workspace
from tests.agents.helpers import audit_of, workspace_changes
from tests.helpers import person, workspace_with


@pytest.fixture
async def team(db: Database, settings: Settings) -> tuple[Workspace, User]:
    workspace, (owner,) = await workspace_with(db, f"secrets-{secrets.token_hex(3)}", [])
    async with workspace_changes(db, settings, workspace.id) as session:
        for agent_id in ("alpha", "beta"):
            await agents.create_agent(session, person(owner), agent_id, AgentDraft(name=agent_id.title()))
    return workspace, owner


async def add(
    db: Database,
    settings: Settings,
    sealer: SecretsService,
    workspace: Workspace,
    owner: User,
    name: str,
    value: str,
    description: str = "",
) -> WorkspaceSecret:
    async with workspace_changes(db, settings, workspace.id) as session:
        return await service.create_secret(
            session, sealer, workspace.id, person(owner), name=name, value=value, description=description
        )


async def rows(db: Database, workspace: Workspace) -> list[WorkspaceSecret]:
    async with db.tenant_session(workspace.id) as session:
        return list(await session.scalars(select(WorkspaceSecret).order_by(WorkspaceSecret.name)))


async def test_a_value_is_sealed_bound_to_its_row_and_opens_only_for_granted_agents(
    db: Database, settings: Settings, secrets_service: SecretsService, team: tuple[Workspace, User]
) -> None:
    workspace, owner = team
    value = f"ghp_{secrets.token_hex(20)}"
    secret = await add(db, settings, secrets_service, workspace, owner, "GITHUB_TOKEN", value, "CI pushes")
    assert secret.preview == f"ghp…{value[-4:]}"
    assert value not in secret.sealed_value and value[4:20] not in secret.sealed_value
    async with db.tenant_session(workspace.id) as session:
        raw = await session.scalar(text("SELECT row_to_json(s)::text FROM secrets s"))
        assert value not in raw
        opened = await secrets_service.open(session, workspace.id, service.PURPOSE, str(secret.id), secret.sealed_value)
        assert opened == value
        # Bound to its row: the same ciphertext under another id does not open.
        with pytest.raises(DecryptionError):
            await secrets_service.open(session, workspace.id, service.PURPOSE, str(owner.id), secret.sealed_value)
        assert await service.granted_environment(session, secrets_service, workspace.id, "alpha") == {}
    async with workspace_changes(db, settings, workspace.id) as session:
        added, removed = await service.set_grants(session, person(owner), secret.id, ["alpha"])
    assert (added, removed) == (["Alpha"], [])
    async with db.tenant_session(workspace.id) as session:
        assert await service.granted_environment(session, secrets_service, workspace.id, "alpha") == {
            "GITHUB_TOKEN": value
        }
        assert await service.granted_environment(session, secrets_service, workspace.id, "beta") == {}
        assert [s.name for s in await service.secrets_of_agent(session, "alpha")] == ["GITHUB_TOKEN"]


async def test_a_name_clash_or_bad_input_changes_nothing(
    db: Database, settings: Settings, secrets_service: SecretsService, team: tuple[Workspace, User]
) -> None:
    workspace, owner = team
    await add(db, settings, secrets_service, workspace, owner, "API_KEY", "first-value-123")
    before = [(s.name, s.sealed_value, s.preview) for s in await rows(db, workspace)]
    for name, value, fields in (
        ("API_KEY", "second-value-456", {"name"}),
        ("api_key", "second-value-456", {"name"}),
        ("OTHER", "", {"value"}),
        ("", "", {"name", "value"}),
    ):
        with pytest.raises(Invalid) as refused:
            await add(db, settings, secrets_service, workspace, owner, name, value)
        assert set(refused.value.errors) == fields
        assert "second-value" not in refused.value.message
    assert [(s.name, s.sealed_value, s.preview) for s in await rows(db, workspace)] == before
    assert [a for a, _, _ in await audit_of(db, workspace.id, "secret.")] == ["secret.created"]


async def test_replace_describe_grant_and_delete(
    db: Database, settings: Settings, secrets_service: SecretsService, team: tuple[Workspace, User]
) -> None:
    workspace, owner = team
    first, second = f"first-{secrets.token_hex(16)}", f"second-{secrets.token_hex(16)}"
    secret = await add(db, settings, secrets_service, workspace, owner, "DEPLOY_KEY", first)
    async with workspace_changes(db, settings, workspace.id) as session:
        await service.replace_value(session, secrets_service, workspace.id, person(owner), secret.id, second)
        _, changed = await service.describe_secret(session, person(owner), secret.id, "Prod deploys")
        assert changed
        _, changed = await service.describe_secret(session, person(owner), secret.id, "  Prod   deploys ")
        assert not changed
        await service.set_grants(session, person(owner), secret.id, ["alpha", "beta"])
    (row,) = await rows(db, workspace)
    assert row.preview == f"sec…{second[-4:]}" and row.description == "Prod deploys"
    async with db.tenant_session(workspace.id) as session:
        assert await service.granted_environment(session, secrets_service, workspace.id, "beta") == {
            "DEPLOY_KEY": second
        }
    async with workspace_changes(db, settings, workspace.id) as session:
        assert await service.set_grants(session, person(owner), secret.id, ["beta"]) == ([], ["Alpha"])
        assert await service.set_grants(session, person(owner), secret.id, ["beta"]) == ([], [])
    with pytest.raises(Invalid, match="No such agent"):
        async with workspace_changes(db, settings, workspace.id) as session:
            await service.set_grants(session, person(owner), secret.id, ["beta", "ghost"])
    # Deleting an agent takes its grants with it.
    async with workspace_changes(db, settings, workspace.id) as session:
        await agents.delete_agent(session, person(owner), "beta")
    async with db.tenant_session(workspace.id) as session:
        assert list(await session.scalars(select(SecretGrant))) == []
    async with workspace_changes(db, settings, workspace.id) as session:
        await service.set_grants(session, person(owner), secret.id, ["alpha"])
        await service.delete_secret(session, person(owner), secret.id)
    assert await rows(db, workspace) == []
    async with db.tenant_session(workspace.id) as session:
        assert list(await session.scalars(select(SecretGrant))) == []
    with pytest.raises(NotFound):
        async with workspace_changes(db, settings, workspace.id) as session:
            await service.delete_secret(session, person(owner), secret.id)
    entries = await audit_of(db, workspace.id, "secret.")
    assert [action for action, _, _ in entries] == [
        "secret.created",
        "secret.value_replaced",
        "secret.described",
        "secret.grants_changed",
        "secret.grants_changed",
        "secret.grants_changed",
        "secret.deleted",
    ]
    assert entries[3][1]["granted"] == "Alpha, Beta" and entries[4][1]["revoked"] == "Alpha"
    assert entries[-1][1] == {"secret_id": str(secret.id), "name": "DEPLOY_KEY", "agents": "Alpha"}
    dumped = json.dumps([details for _, details, _ in entries])
    assert first not in dumped and second not in dumped


async def test_unknown_ids_are_not_found(
    db: Database, settings: Settings, secrets_service: SecretsService, team: tuple[Workspace, User]
) -> None:
    workspace, owner = team
    for secret_id in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(NotFound):
            async with workspace_changes(db, settings, workspace.id) as session:
                await service.replace_value(session, secrets_service, workspace.id, person(owner), secret_id, "v")
