"""Time-based one-time passwords (RFC 6238) and recovery codes (OWASP ASVS 5.0, 6.5.x).

A TOTP code is accepted at most once: :func:`verify_totp` returns the 30-second time step it matched, the
caller stores it, and passes it back as ``last_used_step`` next time so that step, and every earlier one, is
refused (ASVS 6.5.1). One step either side is accepted for clock drift.

Recovery codes have 80 random bits each, so a keyed SHA-256 (HMAC with the deployment's secret key as
pepper) is enough to store them (ASVS 6.5.2 asks for hashing below 112 bits; no slow hash is needed at this
entropy, and checking all ten stays instant).
"""

from __future__ import annotations

import binascii
import hashlib
import hmac
import io
import re
import secrets
import time

import pyotp
import segno

STEP_SECONDS = 30
DIGITS = 6
# Steps either side of now accepted, for phones whose clocks drift.
DRIFT_STEPS = 1

# Crockford's base32 alphabet: no i, l, o or u, so nothing reads as another character (or a word).
RECOVERY_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
RECOVERY_GROUPS = 4
RECOVERY_GROUP_LENGTH = 4  # 16 characters of 5 bits: 80 bits per code
_RECOVERY_LENGTH = RECOVERY_GROUPS * RECOVERY_GROUP_LENGTH
# What people type for the characters the alphabet leaves out.
_LOOKALIKES = str.maketrans({"o": "0", "i": "1", "l": "1"})
_SEPARATORS = re.compile(r"[\s\-_.]+")
_CODE = re.compile(rf"[0-9]{{{DIGITS}}}", re.ASCII)


def new_totp_secret() -> str:
    """A fresh 160-bit secret (32 base32 characters) from the OS CSPRNG."""
    return pyotp.random_base32(length=32)


def provisioning_uri(secret: str, account_email: str, issuer: str = "Marid") -> str:
    """The ``otpauth://totp/...`` URI that authenticator apps import (usually from a QR code)."""
    uri: str = pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS).provisioning_uri(
        name=account_email, issuer_name=issuer
    )
    return uri


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as one inline ``<svg>`` element: a single path, no script, no external reference.

    The URI (which contains the secret) is encoded only as black modules, never as text in the markup.
    """
    code = segno.make(uri, error="m", micro=False)
    buffer = io.BytesIO()
    code.save(buffer, kind="svg", xmldecl=False, svgns=True, svgclass="qr-code", lineclass=None, scale=4, nl=False)
    return buffer.getvalue().decode("utf-8")


def _totp(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=DIGITS, interval=STEP_SECONDS)


def current_step(at: float | None = None) -> int:
    return int((time.time() if at is None else at) // STEP_SECONDS)


def verify_totp(secret: str, code: str, *, last_used_step: int | None, at: float | None = None) -> int | None:
    """The time step ``code`` is valid for (now, or one step either side), or None.

    None also when that step is not after ``last_used_step`` (a replayed or older code) and for malformed
    input; spaces in the code are ignored ("123 456").
    """
    code = "".join(code.split())
    if not _CODE.fullmatch(code):
        return None
    try:
        totp = _totp(secret)
    except (binascii.Error, ValueError):  # a secret that is not base32
        return None
    now = current_step(at)
    matched: int | None = None
    for step in range(now - DRIFT_STEPS, now + DRIFT_STEPS + 1):
        if last_used_step is not None and step <= last_used_step:
            continue
        expected = totp.generate_otp(step)
        # Check every candidate step, so the time taken does not depend on which one matched.
        if hmac.compare_digest(expected.encode(), code.encode()) and matched is None:
            matched = step
    return matched


def generate_recovery_codes(count: int = 10) -> list[str]:
    """``count`` fresh codes like ``7kq2-mx9d-4vaf-h3ne``: 80 random bits each, lowercase, no lookalikes."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(_RECOVERY_LENGTH))
        groups = [raw[i : i + RECOVERY_GROUP_LENGTH] for i in range(0, _RECOVERY_LENGTH, RECOVERY_GROUP_LENGTH)]
        codes.append("-".join(groups))
    return codes


def normalise_recovery_code(code: str) -> str:
    """The code as generated minus separators: case, hyphens, spaces and o/i/l lookalikes do not matter."""
    return _SEPARATORS.sub("", code).lower().translate(_LOOKALIKES)


def hash_recovery_code(code: str, pepper: str) -> str:
    """What to store for a recovery code: HMAC-SHA256 of the normalised code under the pepper, hex."""
    message = b"marid.recovery-code\x00" + normalise_recovery_code(code).encode()
    return hmac.new(pepper.encode(), message, hashlib.sha256).hexdigest()


def match_recovery_code(code: str, hashes: list[str], pepper: str) -> int | None:
    """The index in ``hashes`` of the one ``code`` matches, or None; every hash is compared in constant time."""
    normalised = normalise_recovery_code(code)
    if len(normalised) != _RECOVERY_LENGTH or not all(char in RECOVERY_ALPHABET for char in normalised):
        return None
    candidate = hash_recovery_code(normalised, pepper).encode()
    found: int | None = None
    for index, stored in enumerate(hashes):
        if hmac.compare_digest(candidate, stored.encode()) and found is None:
            found = index
    return found
