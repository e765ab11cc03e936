"""The secrets service: one data key per workspace (stored wrapped), every secret bound to its workspace,
purpose and row, data keys made once even under concurrency, never from a rolled-back transaction."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select, text

from app.db import Database
from app.security.crypto import DecryptionError, Keyring, key_id_of, new_key
from app.security.models import WorkspaceKey
from app.security.secrets import SecretsService, secret_aad
from app.tenants.models import Workspace
from app.workspaces.service import delete_workspace
from tests.helpers import make_user, make_workspace

PURPOSE = "test.value"


async def _workspace(db: Database) -> Workspace:
    return await make_workspace(db, await make_user(db, "secrets"), "secrets")


async def _key_row(db: Database, workspace_id: str) -> WorkspaceKey | None:
    async with db.public_session() as session:
        return await session.get(WorkspaceKey, workspace_id)


async def test_a_secret_is_sealed_under_the_workspace_data_key(
    db: Database, keyring: Keyring, secrets_service: SecretsService
) -> None:
    workspace = await _workspace(db)
    assert await _key_row(db, workspace.id) is None  # made on first use
    async with db.public_session() as session:
        sealed = await secrets_service.seal(session, workspace.id, PURPOSE, "row-1", "sk-live-123")
    assert "sk-live-123" not in sealed
    row = await _key_row(db, workspace.id)
    assert row is not None and row.master_key_id == keyring.primary_key_id and row.rotated_at is None
    assert keyring.owns(row.wrapped_key) and not keyring.owns(sealed)  # sealed by the data key, not the master key
    assert await secrets_service.open(None, workspace.id, PURPOSE, "row-1", sealed) == "sk-live-123"
    # Another process (an empty cache) reads the same key from the table.
    fresh = SecretsService(keyring, db)
    assert await fresh.open(None, workspace.id, PURPOSE, "row-1", sealed) == "sk-live-123"
    async with db.public_session() as session:
        again = await fresh.seal(session, workspace.id, PURPOSE, "row-2", "other")
    assert key_id_of(again) == key_id_of(sealed)


async def test_a_ciphertext_moved_to_another_row_purpose_or_workspace_fails(
    db: Database, secrets_service: SecretsService
) -> None:
    mine, theirs = await _workspace(db), await _workspace(db)
    async with db.public_session() as session:
        sealed = await secrets_service.seal(session, mine.id, PURPOSE, "row-1", "value")
        await secrets_service.seal(session, theirs.id, PURPOSE, "row-1", "theirs")
    for workspace_id, purpose, row_id in [
        (mine.id, PURPOSE, "row-2"),
        (mine.id, "test.other", "row-1"),
        (theirs.id, PURPOSE, "row-1"),
    ]:
        with pytest.raises(DecryptionError):
            await secrets_service.open(None, workspace_id, purpose, row_id, sealed)
    with pytest.raises(DecryptionError, match="no data key"):
        await secrets_service.open(None, "nosuchworksp", PURPOSE, "row-1", sealed)


async def test_a_wrapped_key_copied_to_another_workspace_does_not_unwrap(db: Database, keyring: Keyring) -> None:
    mine, theirs = await _workspace(db), await _workspace(db)
    service = SecretsService(keyring, db)
    async with db.public_session() as session:
        sealed = await service.seal(session, mine.id, PURPOSE, "row-1", "value")
        await service.seal(session, theirs.id, PURPOSE, "row-1", "theirs")
    async with db.public_session() as session:
        wrapped = await session.scalar(select(WorkspaceKey.wrapped_key).where(WorkspaceKey.workspace_id == mine.id))
        await session.execute(
            text("UPDATE public.workspace_keys SET wrapped_key = :w WHERE workspace_id = :id"),
            {"w": wrapped, "id": theirs.id},
        )
    with pytest.raises(DecryptionError):
        await SecretsService(keyring, db).open(None, theirs.id, PURPOSE, "row-1", sealed)


async def test_a_tenant_session_uses_the_service_s_own_transaction(
    db: Database, secrets_service: SecretsService
) -> None:
    """Secrets kept in workspace tables: the tenant role cannot read platform tables, the service can."""
    workspace = await _workspace(db)
    async with db.tenant_session(workspace.id) as session:
        sealed = await secrets_service.seal(session, workspace.id, PURPOSE, "row-1", "tenant value")
        assert await secrets_service.open(session, workspace.id, PURPOSE, "row-1", sealed) == "tenant value"
    assert await _key_row(db, workspace.id) is not None


async def test_a_data_key_from_a_rolled_back_transaction_is_never_used(
    db: Database, keyring: Keyring, secrets_service: SecretsService
) -> None:
    workspace = await _workspace(db)

    class Rollback(Exception):
        pass

    with pytest.raises(Rollback):
        async with db.public_session() as session:
            first = await secrets_service.seal(session, workspace.id, PURPOSE, "row-1", "one")
            # Within its own transaction the new key works...
            assert await secrets_service.open(session, workspace.id, PURPOSE, "row-1", first) == "one"
            raise Rollback
    # ...but it was never committed, so nothing may be sealed with it afterwards.
    assert await _key_row(db, workspace.id) is None
    async with db.public_session() as session:
        second = await secrets_service.seal(session, workspace.id, PURPOSE, "row-1", "two")
    assert await SecretsService(keyring, db).open(None, workspace.id, PURPOSE, "row-1", second) == "two"


async def test_concurrent_first_uses_agree_on_one_data_key(db: Database, keyring: Keyring) -> None:
    workspace = await _workspace(db)
    services = [SecretsService(keyring, db) for _ in range(4)]  # as if four processes

    async def seal(number: int) -> tuple[str, str]:
        service, plaintext = services[number % 4], f"value-{number}"
        if number % 2:
            async with db.public_session() as session:
                return plaintext, await service.seal(session, workspace.id, PURPOSE, str(number), plaintext)
        return plaintext, await service.seal(None, workspace.id, PURPOSE, str(number), plaintext)

    sealed = await asyncio.gather(*(seal(number) for number in range(16)))
    async with db.public_session() as session:
        rows = await session.scalar(
            select(text("count(*)")).select_from(WorkspaceKey).where(WorkspaceKey.workspace_id == workspace.id)
        )
    assert rows == 1
    fresh = SecretsService(keyring, db)
    for number, (plaintext, token) in enumerate(sealed):
        assert await fresh.open(None, workspace.id, PURPOSE, str(number), token) == plaintext


async def test_the_data_key_cache_is_bounded(db: Database, keyring: Keyring) -> None:
    service = SecretsService(keyring, db, cache_size=2)
    workspaces = [await _workspace(db) for _ in range(3)]
    for workspace in workspaces:
        await service.seal(None, workspace.id, PURPOSE, "row", "value")
    assert service.cached_keys == 2
    service.forget(workspaces[-1].id)
    assert service.cached_keys == 1


async def test_deleting_a_workspace_deletes_its_data_key(db: Database, secrets_service: SecretsService) -> None:
    workspace = await _workspace(db)
    await secrets_service.seal(None, workspace.id, PURPOSE, "row", "value")
    async with db.public_session() as session:
        row = await session.get(Workspace, workspace.id)
        assert row is not None
        await delete_workspace(session, row)
    assert await _key_row(db, workspace.id) is None


async def test_purposes_and_rows_are_checked(secrets_service: SecretsService) -> None:
    for purpose in ("", "Has Space", "x" * 65, "ünïcode"):
        with pytest.raises(ValueError, match="purpose"):
            await secrets_service.seal(None, "aaaaaaaaaaaa", purpose, "row", "value")
    with pytest.raises(ValueError, match="row"):
        secret_aad("aaaaaaaaaaaa", PURPOSE, "")
    # Length-prefixed parts: no two triples share associated data.
    assert secret_aad("ab", "c.d", "e") != secret_aad("ab", "c", ".de")


async def test_plaintext_is_never_logged_or_shown(
    db: Database, secrets_service: SecretsService, caplog: pytest.LogCaptureFixture
) -> None:
    workspace = await _workspace(db)
    caplog.set_level(logging.DEBUG)
    plaintext = f"sk-{new_key()}"
    sealed = await secrets_service.seal(None, workspace.id, PURPOSE, "row", plaintext)
    assert await secrets_service.open(None, workspace.id, PURPOSE, "row", sealed) == plaintext
    assert plaintext not in caplog.text
    assert plaintext not in repr(secrets_service)
