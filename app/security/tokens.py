"""Random tokens, their stored hashes, and signed values bound to one purpose.

Reference tokens (sessions, password resets, API keys) are random, shown once, and stored only as their
SHA-256 (``token_hash``): a database leak yields nothing usable, and since the token has ≥ 128 bits of
entropy a plain fast hash is enough (ASVS 7.2.3, 11.5.1). Signed values carry a small payload that the
server must trust later (an e-mail confirmation link, an OIDC ``state``): the HMAC salt is the purpose,
so a value signed for one purpose is refused for any other.
"""

from __future__ import annotations

import copy
import hashlib
import hmac
import secrets
import time
from functools import lru_cache
from typing import Any

from itsdangerous import BadData, URLSafeTimedSerializer

# 128 bits: the floor for any reference token (ASVS 7.2.3).
MIN_TOKEN_BYTES = 16

SignedValue = dict[str, Any] | str


class BadToken(Exception):
    """A signed value that cannot be trusted. ``expired`` is True when it was genuine but too old."""

    def __init__(self, message: str, *, expired: bool = False) -> None:
        super().__init__(message)
        self.expired = expired


def new_token(nbytes: int = 32) -> str:
    """A urlsafe random token from the OS CSPRNG; ``nbytes`` of entropy (at least 16)."""
    if nbytes < MIN_TOKEN_BYTES:
        raise ValueError(f"a token needs at least {MIN_TOKEN_BYTES} random bytes")
    return secrets.token_urlsafe(nbytes)


def token_hash(token: str) -> str:
    """What to store instead of the token: its SHA-256, 64 hex characters."""
    return hashlib.sha256(token.encode()).hexdigest()


def constant_time_equals(a: str | bytes, b: str | bytes) -> bool:
    """Compare secrets without leaking, through timing, how many leading characters match."""
    left = a.encode() if isinstance(a, str) else a
    right = b.encode() if isinstance(b, str) else b
    return hmac.compare_digest(left, right)


@lru_cache(maxsize=64)  # stateless once made; every request's session cookie went through a new one
def _serializer(secret_key: str, purpose: str) -> URLSafeTimedSerializer:
    if not purpose:
        raise ValueError("a signed value needs a purpose")
    return URLSafeTimedSerializer(secret_key, salt=f"marid.{purpose}", signer_kwargs={"digest_method": hashlib.sha256})


def sign(secret_key: str, purpose: str, value: SignedValue) -> str:
    """A urlsafe string carrying ``value`` (readable by anyone: do not put secrets in it) and its signature."""
    return _serializer(secret_key, purpose).dumps(value)


@lru_cache(maxsize=4096)
def _verified(secret_key: str, purpose: str, token: str) -> tuple[object, int]:
    """The value of a genuine ``token`` and when it was signed (seconds), whatever its age; raises ``BadData``.

    Remembered (only genuine tokens: a refusal raises, and raised calls are not cached): the same session cookie
    comes with every request, and checking its signature again (a key derivation and an HMAC through
    itsdangerous's layers) measured 4% of a dashboard request. The answer depends only on the arguments, so a
    remembered one is as good as a new check; the age is checked on every call (:func:`unsign`)."""
    value, signed_at = _serializer(secret_key, purpose).loads(token, return_timestamp=True)
    return value, int(signed_at.timestamp())


def unsign(secret_key: str, purpose: str, token: str, max_age_seconds: int) -> SignedValue:
    """The value signed by :func:`sign` for the same purpose, if at most ``max_age_seconds`` old.

    Raises :class:`BadToken` for anything else: forged, altered, signed for another purpose or with
    another key, or too old (``expired=True``).
    """
    if max_age_seconds <= 0:
        raise ValueError("max_age_seconds must be positive")
    try:
        value, signed_at = _verified(secret_key, purpose, token)
    except BadData as error:
        raise BadToken("This link is not valid.") from error
    # itsdangerous's own rule: too old, or from the future, is expired.
    age = int(time.time()) - signed_at
    if age > max_age_seconds or age < 0:
        raise BadToken("This link has expired.", expired=True)
    if isinstance(value, str):
        return value
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return copy.deepcopy(value)  # the remembered one stays as signed, whatever the caller does with its copy
    raise BadToken("This link is not valid.")
