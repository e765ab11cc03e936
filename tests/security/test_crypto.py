"""AES-256-GCM envelope encryption: round trips, tampering, AAD binding, key rotation, workspace data keys."""

from __future__ import annotations

import base64
import re

import pytest

from app.config import DEV_ENCRYPTION_KEY
from app.security.crypto import (
    DataKey,
    DecryptionError,
    Keyring,
    decode_key,
    decrypt_with_data_key,
    encrypt_with_data_key,
    key_id,
    key_id_of,
    new_data_key,
    new_key,
)

OLD, NEW = new_key(), new_key()
AAD = b"user:7f0c"


def _blob(token: str) -> bytearray:
    return bytearray(base64.urlsafe_b64decode(token))


def _token(blob: bytes | bytearray) -> str:
    return base64.urlsafe_b64encode(bytes(blob)).decode()


def test_round_trip_with_a_fresh_nonce_each_time() -> None:
    keyring = Keyring(NEW)
    for plaintext in (b"", b"sk-live-123", bytes(range(256)) * 40):
        first, second = keyring.encrypt(plaintext, aad=AAD), keyring.encrypt(plaintext, aad=AAD)
        assert first != second
        assert re.fullmatch(r"[A-Za-z0-9_=-]+", first)
        assert keyring.decrypt(first, aad=AAD) == keyring.decrypt(second, aad=AAD) == plaintext


def test_format_is_version_key_id_nonce_ciphertext_tag() -> None:
    keyring = Keyring(NEW)
    blob = _blob(keyring.encrypt(b"12345", aad=AAD))
    assert blob[0] == 1
    assert blob[1:5].hex() == keyring.primary_key_id
    assert len(blob) == 1 + 4 + 12 + 5 + 16


def test_any_altered_byte_is_refused() -> None:
    keyring = Keyring(NEW)
    blob = _blob(keyring.encrypt(b"a secret value", aad=AAD))
    for index in range(len(blob)):
        altered = bytearray(blob)
        altered[index] ^= 0x01
        with pytest.raises(DecryptionError):
            keyring.decrypt(_token(altered), aad=AAD)
    for broken in (_token(blob[:-1]), _token(blob[:20]), "", "not base64!", "é", _token(blob) + "@@"):
        with pytest.raises(DecryptionError):
            keyring.decrypt(broken, aad=AAD)


def test_wrong_aad_is_refused() -> None:
    keyring = Keyring(NEW)
    token = keyring.encrypt(b"totp secret", aad=b"user:1")
    with pytest.raises(DecryptionError):
        keyring.decrypt(token, aad=b"user:2")
    with pytest.raises(DecryptionError):
        keyring.decrypt(token, aad=b"")


def test_rotation_old_keys_decrypt_the_new_key_encrypts() -> None:
    before = Keyring(OLD)
    old_token = before.encrypt(b"made before rotation", aad=AAD)

    after = Keyring(NEW, old_keys=[OLD])
    assert after.decrypt(old_token, aad=AAD) == b"made before rotation"
    new_token = after.encrypt(b"made after", aad=AAD)
    assert after.is_current(new_token) and not after.is_current(old_token)
    assert not after.is_current("garbage")
    with pytest.raises(DecryptionError, match="unknown key"):
        before.decrypt(new_token, aad=AAD)

    # Once the old key is retired, what was not re-encrypted is unreadable: re-encrypt first.
    reencrypted = after.encrypt(after.decrypt(old_token, aad=AAD), aad=AAD)
    retired = Keyring(NEW)
    assert retired.decrypt(reencrypted, aad=AAD) == b"made before rotation"
    with pytest.raises(DecryptionError, match="unknown key"):
        retired.decrypt(old_token, aad=AAD)


def test_keys_are_32_bytes_of_urlsafe_base64() -> None:
    assert len(decode_key(DEV_ENCRYPTION_KEY)) == 32
    assert decode_key(NEW.rstrip("=")) == decode_key(NEW)
    Keyring(DEV_ENCRYPTION_KEY)
    Keyring(bytes(32))
    for bad in ("", "c2hvcnQ=", base64.urlsafe_b64encode(bytes(31)).decode(), "!!!!"):
        with pytest.raises(ValueError):
            Keyring(bad)
    with pytest.raises(ValueError):
        Keyring(bytes(16))


def test_data_keys_are_bound_to_their_workspace() -> None:
    keyring = Keyring(NEW)
    data_key = new_data_key()
    assert len(data_key) == 32 and data_key != new_data_key()
    wrapped = keyring.wrap_data_key(data_key, "aaaaaaaaaaaa")
    assert keyring.unwrap_data_key(wrapped, "aaaaaaaaaaaa") == data_key
    with pytest.raises(DecryptionError):
        keyring.unwrap_data_key(wrapped, "bbbbbbbbbbbb")
    # A wrapped data key is not an ordinary ciphertext either.
    with pytest.raises(DecryptionError):
        keyring.decrypt(wrapped, aad=b"aaaaaaaaaaaa")
    with pytest.raises(ValueError):
        keyring.wrap_data_key(b"short", "aaaaaaaaaaaa")


def test_master_key_rotation_rewraps_data_keys() -> None:
    data_key = new_data_key()
    wrapped = Keyring(OLD).wrap_data_key(data_key, "aaaaaaaaaaaa")
    rotated = Keyring(NEW, old_keys=[OLD])
    rewrapped = rotated.rewrap_data_key(wrapped, "aaaaaaaaaaaa")
    assert rotated.is_current(rewrapped)
    assert Keyring(NEW).unwrap_data_key(rewrapped, "aaaaaaaaaaaa") == data_key


def test_secrets_under_a_data_key() -> None:
    data_key, other_key = new_data_key(), new_data_key()
    aad = b"ws:aaaaaaaaaaaa:secret:OPENAI_API_KEY"
    token = encrypt_with_data_key(data_key, b"sk-123", aad=aad)
    assert decrypt_with_data_key(data_key, token, aad=aad) == b"sk-123"
    with pytest.raises(DecryptionError):
        decrypt_with_data_key(data_key, token, aad=b"ws:aaaaaaaaaaaa:secret:OTHER")
    with pytest.raises(DecryptionError, match="unknown key"):
        decrypt_with_data_key(other_key, token, aad=aad)
    # The same 32 bytes used as a master key do not open a data-key ciphertext: keys are derived per purpose.
    with pytest.raises(DecryptionError):
        Keyring(data_key).decrypt(token, aad=aad)


def test_a_keyring_from_a_list_encrypts_under_the_first_key() -> None:
    keyring = Keyring.from_keys([NEW, OLD])
    assert keyring.primary_key_id == key_id(NEW) and keyring.retired_key_ids == [key_id(OLD)]
    token = keyring.encrypt(b"x", aad=AAD)
    assert key_id_of(token) == key_id(NEW)
    assert key_id_of(Keyring(OLD).encrypt(b"x", aad=AAD)) == key_id(OLD)
    assert key_id_of("not a ciphertext") is None
    with pytest.raises(ValueError, match="at least one key"):
        Keyring.from_keys([])
    assert NEW not in repr(keyring) and OLD not in repr(keyring)


def test_a_keyring_tells_its_own_ciphertexts_from_data_key_ones() -> None:
    keyring = Keyring(NEW, old_keys=[OLD])
    assert keyring.owns(keyring.encrypt(b"x", aad=AAD))
    assert keyring.owns(Keyring(OLD).encrypt(b"x", aad=AAD))
    assert not keyring.owns(encrypt_with_data_key(new_data_key(), b"x", aad=AAD))
    assert not keyring.owns(Keyring(new_key()).encrypt(b"x", aad=AAD))
    assert not keyring.owns("garbage")


def test_a_data_key_object_round_trips_and_hides_its_key() -> None:
    raw = new_data_key()
    key = DataKey(raw)
    token = key.encrypt(b"sk-live", aad=AAD)
    assert decrypt_with_data_key(raw, token, aad=AAD) == b"sk-live"
    assert DataKey(raw).decrypt(token, aad=AAD) == b"sk-live"
    assert key_id_of(token) == key.id
    assert raw.hex() not in repr(key) and base64.urlsafe_b64encode(raw).decode() not in repr(key)
