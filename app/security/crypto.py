"""Envelope encryption of secrets at rest: AES-256-GCM under versioned keys (OWASP ASVS 5.0, V11).

Every ciphertext is self-describing, so keys can rotate without a flag day::

    version (1 byte, 0x01) | key id (4 bytes) | nonce (12 random bytes) | AES-GCM ciphertext and 16-byte tag

stored as urlsafe base64 text. The header is authenticated together with the caller's AAD, which binds the
ciphertext to where it belongs (a user id, a workspace id and a secret's name...): moved anywhere else, it
fails to decrypt instead of being silently accepted.

The master key (``MARID_ENCRYPTION_KEYS``) never encrypts tenant data itself: it wraps one random data key per
workspace (AAD = the workspace id), and the workspace's secrets are encrypted under that data key
(:mod:`app.security.secrets`). A wrapped key copied to another workspace does not unwrap, and rotating the
master key only re-wraps the data keys. A few values are needed before any workspace data, or belong to a
person rather than a workspace (workspace role passwords, TOTP secrets): those are sealed under the master
key itself, and rotation re-seals them.

Key ids are a fingerprint of the key, so a keyring needs no configuration beyond the keys themselves:
encrypt under the newest (primary) key, decrypt under any key still in the ring, and re-encrypt whatever
:meth:`Keyring.is_current` says is not under the primary key before retiring an old one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

VERSION = 1
KEY_BYTES = 32
_KEY_ID_BYTES = 4
_NONCE_BYTES = 12
_TAG_BYTES = 16
_HEADER_BYTES = 1 + _KEY_ID_BYTES
_DATA_KEY_AAD = b"marid.data-key\x00"


class DecryptionError(Exception):
    """The ciphertext was altered, belongs elsewhere (other AAD), or was made with a key we do not have."""


class _Key:
    """One AES-256-GCM key and the id written into every ciphertext made with it."""

    def __init__(self, key: bytes, *, purpose: bytes) -> None:
        if len(key) != KEY_BYTES:
            raise ValueError(f"an encryption key must be {KEY_BYTES} bytes")
        # Derive the working key, so the configured key is never used directly and one key can serve
        # several purposes (master key, data keys) without their ciphertexts being interchangeable.
        derived = HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=b"marid.aes-gcm." + purpose)
        self.aead = AESGCM(derived.derive(key))
        self.id = hashlib.sha256(b"marid.key-id\x00" + key).digest()[:_KEY_ID_BYTES]

    def encrypt(self, plaintext: bytes, aad: bytes) -> str:
        header = bytes([VERSION]) + self.id
        nonce = os.urandom(_NONCE_BYTES)
        sealed = self.aead.encrypt(nonce, plaintext, header + aad)
        return base64.urlsafe_b64encode(header + nonce + sealed).decode()


def _split(token: str) -> tuple[bytes, bytes, bytes, bytes]:
    """(header, key id, nonce, sealed) of a ciphertext, or DecryptionError if it is not one."""
    try:
        blob = base64.b64decode(token.encode(), altchars=b"-_", validate=True)
    except (binascii.Error, ValueError, UnicodeEncodeError) as error:
        raise DecryptionError("not a Marid ciphertext") from error
    if len(blob) < _HEADER_BYTES + _NONCE_BYTES + _TAG_BYTES or blob[0] != VERSION:
        raise DecryptionError("not a Marid ciphertext (or an unknown format version)")
    header, body = blob[:_HEADER_BYTES], blob[_HEADER_BYTES:]
    return header, header[1:], body[:_NONCE_BYTES], body[_NONCE_BYTES:]


def _decrypt(keys: dict[bytes, _Key], token: str, aad: bytes) -> bytes:
    header, key_id, nonce, sealed = _split(token)
    key = keys.get(key_id)
    if key is None:
        raise DecryptionError(f"encrypted with unknown key {key_id.hex()}")
    try:
        return key.aead.decrypt(nonce, sealed, header + aad)
    except InvalidTag as error:
        raise DecryptionError("the ciphertext was altered or does not belong here (AAD mismatch)") from error


def key_id_of(token: str) -> str | None:
    """The id (hex) of the key that made ``token``, or None if it is not a Marid ciphertext."""
    try:
        return _split(token)[1].hex()
    except DecryptionError:
        return None


def decode_key(value: str) -> bytes:
    """A 32-byte key from its urlsafe base64 text (padding optional)."""
    try:
        key = base64.urlsafe_b64decode(value.strip().encode() + b"=" * (-len(value.strip()) % 4))
    except (binascii.Error, ValueError) as error:
        raise ValueError("an encryption key must be urlsafe base64") from error
    if len(key) != KEY_BYTES:
        raise ValueError(f"an encryption key must be {KEY_BYTES} bytes (urlsafe base64), not {len(key)}")
    return key


def new_key() -> str:
    """A fresh master key, as text for ``MARID_ENCRYPTION_KEYS`` (``marid keys new``)."""
    return base64.urlsafe_b64encode(os.urandom(KEY_BYTES)).decode()


def key_id(key: str | bytes) -> str:
    """The id a master key writes into its ciphertexts (hex), as ``marid keys`` shows it."""
    return _Key(_as_bytes(key), purpose=b"master").id.hex()


class Keyring:
    """The master key (encrypts) and older master keys (only decrypt), each urlsafe base64 or raw bytes.

    Build one per process at start (:meth:`app.config.Settings.keyring`) and pass it to whatever needs it.
    """

    def __init__(self, master_key: str | bytes, old_keys: Iterable[str | bytes] = ()) -> None:
        self._primary = _Key(_as_bytes(master_key), purpose=b"master")
        self._keys: dict[bytes, _Key] = {self._primary.id: self._primary}
        for old in old_keys:
            key = _Key(_as_bytes(old), purpose=b"master")
            # A 32-bit id collision between two random keys is about one in four billion; refuse it anyway.
            if key.id in self._keys and key.id != self._primary.id:
                raise ValueError("two keys in the keyring share an id; generate a new key")
            self._keys.setdefault(key.id, key)

    @classmethod
    def from_keys(cls, keys: Sequence[str | bytes]) -> Keyring:
        """The first key encrypts; the others (retired keys) only decrypt."""
        if not keys:
            raise ValueError("a keyring needs at least one key")
        return cls(keys[0], keys[1:])

    def __repr__(self) -> str:
        return f"<Keyring primary={self.primary_key_id} retired={self.retired_key_ids}>"

    @property
    def primary_key_id(self) -> str:
        return self._primary.id.hex()

    @property
    def retired_key_ids(self) -> list[str]:
        """The ids of the keys that only decrypt (what rotation moves away from)."""
        return [key_id.hex() for key_id in self._keys if key_id != self._primary.id]

    def owns(self, token: str) -> bool:
        """Whether ``token`` was made by one of these master keys (not, say, by a workspace's data key)."""
        try:
            return _split(token)[1] in self._keys
        except DecryptionError:
            return False

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> str:
        """Encrypt under the primary key; ``aad`` must be given again, identical, to decrypt."""
        return self._primary.encrypt(plaintext, aad)

    def decrypt(self, token: str, *, aad: bytes) -> bytes:
        """The plaintext of :meth:`encrypt`; DecryptionError on tampering, wrong AAD or an unknown key."""
        return _decrypt(self._keys, token, aad)

    def is_current(self, token: str) -> bool:
        """Whether ``token`` is under the primary key (otherwise re-encrypt it before retiring old keys)."""
        try:
            return _split(token)[1] == self._primary.id
        except DecryptionError:
            return False

    def wrap_data_key(self, data_key: bytes, workspace_id: str) -> str:
        """Encrypt a workspace's data key under the primary master key, bound to that workspace."""
        if len(data_key) != KEY_BYTES:
            raise ValueError(f"a data key must be {KEY_BYTES} bytes")
        return self.encrypt(data_key, aad=_DATA_KEY_AAD + workspace_id.encode())

    def unwrap_data_key(self, wrapped: str, workspace_id: str) -> bytes:
        """The data key of ``workspace_id``; DecryptionError if ``wrapped`` belongs to another workspace."""
        data_key = self.decrypt(wrapped, aad=_DATA_KEY_AAD + workspace_id.encode())
        if len(data_key) != KEY_BYTES:
            raise DecryptionError("a wrapped data key of the wrong length")
        return data_key

    def rewrap_data_key(self, wrapped: str, workspace_id: str) -> str:
        """The same data key wrapped under the primary master key (for master-key rotation)."""
        return self.wrap_data_key(self.unwrap_data_key(wrapped, workspace_id), workspace_id)


def _as_bytes(key: str | bytes) -> bytes:
    return decode_key(key) if isinstance(key, str) else key


def new_data_key() -> bytes:
    """A fresh random data key for one workspace (store only its wrapped form)."""
    return os.urandom(KEY_BYTES)


class DataKey:
    """A workspace's unwrapped data key, ready to use (derive once, keep it in a cache, never log it)."""

    def __init__(self, data_key: bytes) -> None:
        self._key = _Key(data_key, purpose=b"data")

    def __repr__(self) -> str:
        return f"<DataKey {self.id}>"

    @property
    def id(self) -> str:
        return self._key.id.hex()

    def encrypt(self, plaintext: bytes, *, aad: bytes) -> str:
        return self._key.encrypt(plaintext, aad)

    def decrypt(self, token: str, *, aad: bytes) -> bytes:
        return _decrypt({self._key.id: self._key}, token, aad)


def encrypt_with_data_key(data_key: bytes, plaintext: bytes, *, aad: bytes) -> str:
    """Encrypt a workspace secret under the workspace's (unwrapped) data key; same format as the keyring's."""
    return DataKey(data_key).encrypt(plaintext, aad=aad)


def decrypt_with_data_key(data_key: bytes, token: str, *, aad: bytes) -> bytes:
    return DataKey(data_key).decrypt(token, aad=aad)
