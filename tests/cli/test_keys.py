"""`marid keys new | status | rotate`, and `marid migrate` moving SSO secrets sealed before the secrets service."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest
from sqlalchemy import update

from app.account.twofactor import seal_secret
from app.auth.models import User
from app.cli import main
from app.cli.keys import run_rotate, run_status
from app.config import Settings
from app.security.crypto import Keyring, decode_key, key_id, new_key
from app.security.secrets import SecretsService
from app.sso.models import SsoConnection
from app.sso.service import decrypt_secret, legacy_secret_aad
from tests.conftest import Services
from tests.helpers import make_user, make_workspace
from tests.sso.helpers import configure

OLD, NEW, LOST = new_key(), new_key(), new_key()


def test_keys_new_prints_a_fresh_key(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["keys", "new"]) == 0
    first = capsys.readouterr()
    assert main(["keys", "new"]) == 0
    second = capsys.readouterr().out.strip()
    key = first.out.strip()
    assert len(decode_key(key)) == 32 and key != second
    assert key_id(key) in first.err and "MARID_ENCRYPTION_KEYS" in first.err


def _marid(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "app.cli", *args], env=env, capture_output=True, text=True, timeout=120, check=False
    )


async def _old_world(settings: Settings, url: str) -> tuple[str, uuid.UUID, str]:
    """A workspace with an SSO secret sealed the old way and a person with 2FA, all under the key OLD."""
    before = Settings(
        env="test", database_url=url, redis_url=settings.redis_url, dns_nameservers="", encryption_keys=OLD
    )
    keyring = before.keyring()
    db = before.database(keyring)
    try:
        owner = await make_user(db, "keys")
        workspace = await make_workspace(db, owner, "keys")
        await configure(db, before, workspace, "https://idp.example.com", "", client_secret="kept-secret")
        async with db.public_session() as session:
            await session.execute(
                update(SsoConnection)
                .where(SsoConnection.workspace_id == workspace.id)
                .values(client_secret_enc=keyring.encrypt(b"kept-secret", aad=legacy_secret_aad(workspace.id)))
            )
            user = await session.get(User, owner.id)
            assert user is not None
            user.totp_secret_enc = seal_secret(keyring, owner.id, "JBSWY3DPEHPK3PXP")
    finally:
        await db.dispose()
    return workspace.id, owner.id, "kept-secret"


async def test_migrate_then_rotate_then_remove_the_old_key(services: Services, settings: Settings) -> None:
    url = await services.new_database("keys_cli")
    workspace_id, _owner, secret = await _old_world(settings, url)
    env = {
        **os.environ,
        "MARID_ENV": "test",
        "MARID_DATABASE_URL": url,
        "MARID_REDIS_URL": settings.redis_url,
        "MARID_ENCRYPTION_KEYS": f"{NEW}, {OLD}",
    }
    status = _marid(env, "keys", "status")
    assert status.returncode == 0, status.stderr
    assert f"key {key_id(NEW)} (primary)" in status.stdout and f"key {key_id(OLD)} (retired)" in status.stdout
    assert "SSO client secrets sealed under the master key: 1" in status.stdout
    assert "run `marid keys rotate`" in status.stdout

    # `marid migrate` moves the SSO secret sealed before the secrets service onto the workspace's data key.
    migrated = _marid(env, "migrate")
    assert migrated.returncode == 0, migrated.stderr
    after_migrate = Settings(env="test", database_url=url, redis_url=settings.redis_url, encryption_keys=f"{NEW},{OLD}")
    keyring = after_migrate.keyring()
    db = after_migrate.database(keyring)
    try:
        async with db.public_session() as session:
            row = await session.get(SsoConnection, workspace_id)
            assert row is not None and not keyring.owns(row.client_secret_enc)
            assert await decrypt_secret(SecretsService(keyring, db), row) == secret
    finally:
        await db.dispose()

    rotated = _marid(env, "keys", "rotate")
    assert rotated.returncode == 0, rotated.stderr
    assert f"Everything is under key {key_id(NEW)}" in rotated.stderr
    assert f"Retired keys ({key_id(OLD)}) can now be removed" in rotated.stderr
    assert "TOTP secrets: 1 of 1 moved" in rotated.stderr

    only_new = {**env, "MARID_ENCRYPTION_KEYS": NEW}
    status = _marid(only_new, "keys", "status")
    assert status.returncode == 0 and "0 value(s) under keys other than the primary" in status.stdout
    again = _marid(only_new, "keys", "rotate", "--quiet")
    assert again.returncode == 0 and again.stderr == ""


async def test_rotate_names_what_no_configured_key_opens(
    services: Services, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await services.new_database("keys_lost")
    _workspace_id, owner_id, _secret = await _old_world(settings, url)
    current = Settings(env="test", database_url=url, redis_url=settings.redis_url, encryption_keys=f"{NEW},{OLD}")
    db = current.database(current.keyring())
    try:
        lost = await make_user(db, "lost")
        async with db.public_session() as session:
            user = await session.get(User, lost.id)
            assert user is not None
            user.totp_secret_enc = seal_secret(Keyring(LOST), lost.id, "JBSWY3DPEHPK3PXP")
    finally:
        await db.dispose()

    assert await run_rotate(current, current.keyring(), quiet=True) == 1
    err = capsys.readouterr().err
    assert f"TOTP secrets: no configured key opens {lost.id}" in err
    assert "1 value(s) are still under other keys" in err and "run `marid keys rotate` again" in err
    assert await run_status(current, current.keyring()) == 0
    out = capsys.readouterr().out
    assert f"key {key_id(LOST)} (NOT CONFIGURED)" in out and "TOTP secrets: 1" in out
    # Everything else was rotated: the owner's secret is under the new key.
    db = current.database(current.keyring())
    try:
        async with db.public_session() as session:
            owner = await session.get(User, owner_id)
            assert owner is not None and owner.totp_secret_enc is not None
            assert Keyring(NEW).owns(owner.totp_secret_enc)
    finally:
        await db.dispose()
