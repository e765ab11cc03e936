"""SSO client secrets on the secrets service: new ones sealed under the workspace's data key and bound to the
connection's row; ones sealed before it (directly under the master key) still decrypt, and move onto it."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import update

from app.config import Settings
from app.db import Database
from app.security.crypto import DecryptionError, Keyring
from app.security.secrets import SecretsService
from app.sso.legacy_secrets import legacy_secret_workspaces, upgrade_legacy_secrets
from app.sso.models import SsoConnection
from app.sso.service import SECRET_PURPOSE, decrypt_secret, legacy_secret_aad
from tests.sso.conftest import CLIENT_SECRET
from tests.sso.helpers import configure, make_user, make_workspace


async def _configured(db: Database, settings: Settings) -> SsoConnection:
    workspace = await make_workspace(db, await make_user(db, "owner"))
    return await configure(db, settings, workspace, f"https://idp-{secrets.token_hex(4)}.example.com", "")


async def _make_legacy(db: Database, keyring: Keyring, workspace_id: str, secret: str) -> str:
    """The row as a release before the secrets service wrote it."""
    sealed = keyring.encrypt(secret.encode(), aad=legacy_secret_aad(workspace_id))
    async with db.public_session() as session:
        await session.execute(
            update(SsoConnection).where(SsoConnection.workspace_id == workspace_id).values(client_secret_enc=sealed)
        )
    return sealed


async def _row(db: Database, workspace_id: str) -> SsoConnection:
    async with db.public_session() as session:
        row = await session.get(SsoConnection, workspace_id)
        assert row is not None
        return row


async def test_new_secrets_are_sealed_under_the_workspace_data_key(
    db: Database, settings: Settings, secrets_service: SecretsService
) -> None:
    connection = await _configured(db, settings)
    row = await _row(db, connection.workspace_id)
    assert not secrets_service.keyring.owns(row.client_secret_enc)  # not under the master key
    assert await decrypt_secret(secrets_service, row) == CLIENT_SECRET
    async with db.public_session() as session:  # with the caller's session too
        assert await decrypt_secret(secrets_service, row, session) == CLIENT_SECRET
    assert (
        await secrets_service.open(None, row.workspace_id, SECRET_PURPOSE, row.workspace_id, row.client_secret_enc)
        == CLIENT_SECRET
    )


async def test_a_secret_moved_to_another_workspace_does_not_decrypt(
    db: Database, settings: Settings, secrets_service: SecretsService
) -> None:
    mine, theirs = await _configured(db, settings), await _configured(db, settings)
    stolen = (await _row(db, mine.workspace_id)).client_secret_enc
    legacy = await _make_legacy(db, secrets_service.keyring, mine.workspace_id, "legacy")
    for sealed in (stolen, legacy):
        async with db.public_session() as session:
            await session.execute(
                update(SsoConnection)
                .where(SsoConnection.workspace_id == theirs.workspace_id)
                .values(client_secret_enc=sealed)
            )
        with pytest.raises(DecryptionError):
            await decrypt_secret(secrets_service, await _row(db, theirs.workspace_id))
    async with db.public_session() as session:  # leave no unreadable row for the tests that sweep them all
        await session.delete(await session.get(SsoConnection, theirs.workspace_id))


async def test_old_secrets_still_decrypt_and_move_onto_the_workspace_data_key(
    db: Database, settings: Settings, secrets_service: SecretsService
) -> None:
    old, new = await _configured(db, settings), await _configured(db, settings)
    secret = f"before-{secrets.token_hex(8)}"
    legacy = await _make_legacy(db, secrets_service.keyring, old.workspace_id, secret)
    assert await decrypt_secret(secrets_service, await _row(db, old.workspace_id)) == secret
    assert old.workspace_id in await legacy_secret_workspaces(db, secrets_service)
    assert new.workspace_id not in await legacy_secret_workspaces(db, secrets_service)

    seen: list[tuple[int, int]] = []
    report = await upgrade_legacy_secrets(db, secrets_service, lambda done, total: seen.append((done, total)))
    assert report.changed >= 1 and old.workspace_id not in report.failed and seen[-1][0] == seen[-1][1]
    moved = await _row(db, old.workspace_id)
    assert moved.client_secret_enc != legacy and not secrets_service.keyring.owns(moved.client_secret_enc)
    assert await decrypt_secret(secrets_service, moved) == secret
    assert await decrypt_secret(secrets_service, await _row(db, new.workspace_id)) == CLIENT_SECRET
    assert old.workspace_id not in await legacy_secret_workspaces(db, secrets_service)
    again = await upgrade_legacy_secrets(db, secrets_service)
    assert again.changed == 0 and again.pending == 0  # resumable: nothing left to do
