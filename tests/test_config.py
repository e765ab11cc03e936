"""Production refuses default or missing secrets, and says which."""

from __future__ import annotations

import base64
import secrets
import subprocess
import sys

import pytest

from app.config import DEV_ENCRYPTION_KEY, ConfigError, Settings
from app.security.crypto import Keyring, key_id

GOOD = {
    "env": "production",
    "secret_key": secrets.token_urlsafe(48),
    "encryption_key": base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
    "database_url": "postgresql+asyncpg://marid:pw@db.internal/marid",
    "redis_url": "redis://cache.internal:6379/0",
    "base_url": "https://marid.example.com",
    "smtp_host": "smtp.example.com",
}


def test_production_with_defaults_names_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(env="production").check()
    message = str(caught.value)
    for name in ("MARID_SECRET_KEY", "MARID_ENCRYPTION_KEY", "MARID_DATABASE_URL", "MARID_REDIS_URL", "MARID_BASE_URL"):
        assert name in message


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("secret_key", "short", "MARID_SECRET_KEY"),
        ("encryption_key", "not-base64-32-bytes", "MARID_ENCRYPTION_KEY"),
        ("base_url", "http://marid.example.com", "MARID_BASE_URL"),
    ],
)
def test_each_weak_setting_is_named(field: str, value: str, named: str) -> None:
    with pytest.raises(ConfigError, match=named):
        Settings(**{**GOOD, field: value}).check()


def test_production_with_real_secrets_starts() -> None:
    Settings(**GOOD).check()


def test_dev_accepts_defaults() -> None:
    Settings(env="dev").check()


def test_web_refuses_to_start_and_says_why() -> None:
    env = {"MARID_ENV": "production", "PATH": "/usr/bin:/bin"}
    result = subprocess.run(
        [sys.executable, "-m", "app.cli", "web"], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2
    assert "refuses to start in production" in result.stderr and "MARID_SECRET_KEY" in result.stderr
    assert "Traceback" not in result.stderr


def test_event_retention_is_configurable() -> None:
    from app.live.bus import TopicKind

    retention = Settings(events_activity_maxlen=50, events_run_maxlen=7).event_retention()
    assert retention[TopicKind.ACTIVITY].maxlen == 50
    assert retention[TopicKind.RUN].maxlen == 7 and retention[TopicKind.RUN].ttl_seconds


# Every MARID_ setting production needs: what a command started without configuration must name.
REQUIRED = ("MARID_SECRET_KEY", "MARID_ENCRYPTION_KEY", "MARID_DATABASE_URL", "MARID_REDIS_URL", "MARID_SMTP_HOST")


def test_production_is_the_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MARID_ENV", raising=False)
    settings = Settings()
    assert settings.env == "production" and settings.is_production
    with pytest.raises(ConfigError) as caught:
        settings.check()
    for name in (*REQUIRED, "MARID_BASE_URL"):
        assert name in str(caught.value)


@pytest.mark.parametrize("command", [["web", "--port", "0"], ["worker"], ["migrate"]])
def test_commands_without_marid_env_refuse_to_start_and_name_every_missing_setting(command: list[str]) -> None:
    """No MARID_ENV is production: the default secret and a public /dev/mailbox must never run by omission."""
    env = {"PATH": "/usr/bin:/bin"}  # nothing else: not MARID_ENV, not a single MARID_ setting
    try:
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", *command], env=env, capture_output=True, text=True, timeout=30
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"`marid {command[0]}` started without any configuration")
    assert result.returncode == 2, result.stderr
    assert "refuses to start in production" in result.stderr
    for name in (*REQUIRED, "MARID_BASE_URL"):
        assert name in result.stderr
    assert "Traceback" not in result.stderr


def test_dev_routes_are_refused_in_production() -> None:
    with pytest.raises(ConfigError, match="MARID_DEV_ROUTES"):
        Settings(**GOOD, dev_routes=True).check()


def _key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _listed(keys: str) -> Settings:
    return Settings(**{**GOOD, "encryption_key": DEV_ENCRYPTION_KEY, "encryption_keys": keys})


def test_encryption_keys_list_the_primary_first_and_retired_keys_after() -> None:
    primary, retired = _key(), _key()
    settings = _listed(f" {primary},\n{retired} ")
    settings.check()
    keyring = settings.keyring()
    assert keyring.primary_key_id == key_id(primary)
    assert keyring.retired_key_ids == [key_id(retired)]
    # A value made under the retired key still opens; new values are made under the primary.
    old = Keyring(retired).encrypt(b"before", aad=b"a")
    assert keyring.decrypt(old, aad=b"a") == b"before"
    assert keyring.is_current(keyring.encrypt(b"after", aad=b"a"))


def test_the_single_key_shorthand_still_works() -> None:
    settings = Settings(**GOOD)
    assert settings.keyring().primary_key_id == key_id(GOOD["encryption_key"])
    assert settings.keyring().retired_key_ids == []


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ("{a}, not-a-key", "key 2 is not 32 random bytes"),
        ("{a}, {short}", "key 2 is not 32 random bytes"),
        ("{a}, {b}, {a}", "key 3 repeats key 1"),
        ("{dev}, {a}", "key 1 is the public development key"),
    ],
)
def test_production_refuses_bad_or_duplicate_keys(keys: str, message: str) -> None:
    short = base64.urlsafe_b64encode(secrets.token_bytes(16)).decode()
    value = keys.format(a=_key(), b=_key(), short=short, dev=DEV_ENCRYPTION_KEY)
    with pytest.raises(ConfigError, match=f"MARID_ENCRYPTION_KEYS: {message}"):
        _listed(value).check()


def test_production_refuses_both_the_list_and_the_shorthand() -> None:
    with pytest.raises(ConfigError, match="MARID_ENCRYPTION_KEY and MARID_ENCRYPTION_KEYS are both set"):
        Settings(**{**GOOD, "encryption_keys": _key()}).check()


def test_encryption_keys_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    primary, retired = _key(), _key()
    monkeypatch.setenv("MARID_ENCRYPTION_KEYS", f"{primary},{retired}")
    keyring = Settings(env="test").keyring()
    assert [keyring.primary_key_id, *keyring.retired_key_ids] == [key_id(primary), key_id(retired)]
