"""TOTP two-factor authentication: enrolment, recovery codes, and proving a factor (ASVS 6.5.x, 7.5.1).

The secret is encrypted with the master key (AAD = the user id) from the moment enrolment starts: it belongs to a
person, not to any workspace, so no workspace data key fits; `marid keys rotate` re-seals it
(:data:`TOTP_SECRETS`). The keyring is the process's one, passed in by the caller. 2FA is on
only once a code from the app confirms it (``totp_enabled_at``). Recovery codes are shown once and stored as
keyed hashes; each works once. A TOTP code is accepted once: the step it matched is stored and that step
and every earlier one are refused afterwards.

No HTTP here; callers own the transaction and should load the user ``with_for_update`` so two requests
cannot both accept the same code.
"""

from __future__ import annotations

import re
import uuid

from anyio import to_thread
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import RecoveryCode, User
from app.auth.sessions import now
from app.config import Settings
from app.security.crypto import DecryptionError, Keyring
from app.security.passwords import verify_password
from app.security.sealed import MasterSealedColumn
from app.security.totp import (
    generate_recovery_codes,
    hash_recovery_code,
    match_recovery_code,
    new_totp_secret,
    provisioning_uri,
    qr_svg,
    verify_totp,
)

RECOVERY_CODE_COUNT = 10
# Attributes the CSP (style-src 'self') would block, and anything that could run: the QR must have neither.
_STYLE_ATTRIBUTE = re.compile(r"""\sstyle\s*=\s*("[^"]*"|'[^']*')""", re.IGNORECASE)
_FORBIDDEN = re.compile(r"<\s*(script|foreignObject|style)|\son[a-z]+\s*=|javascript:", re.IGNORECASE)


class TwoFactorError(Exception):
    """Why a 2FA change was refused, as a sentence for the user."""


def totp_aad(user_id: uuid.UUID) -> bytes:
    return user_id.bytes


TOTP_SECRETS = MasterSealedColumn("TOTP secrets", "public.users", "id", "totp_secret_enc", totp_aad)


def _pepper(settings: Settings) -> str:
    return settings.secret_key.get_secret_value()


def secret_of(keyring: Keyring, user: User) -> str | None:
    """The user's TOTP secret (pending or enabled) in the clear, or None if there is none usable."""
    if user.totp_secret_enc is None:
        return None
    try:
        return keyring.decrypt(user.totp_secret_enc, aad=totp_aad(user.id)).decode()
    except DecryptionError:
        return None


def is_enrolling(user: User) -> bool:
    return user.totp_secret_enc is not None and user.totp_enabled_at is None


def begin_enrolment(keyring: Keyring, user: User) -> str:
    """Give ``user`` a fresh, not yet enabled secret (replacing any unconfirmed one); returns it."""
    if user.has_2fa:
        raise TwoFactorError("Two-factor authentication is already on. Turn it off first to use another app.")
    secret = new_totp_secret()
    user.totp_secret_enc = seal_secret(keyring, user.id, secret)
    user.totp_last_step = None
    return secret


def seal_secret(keyring: Keyring, user_id: uuid.UUID, secret: str) -> str:
    return keyring.encrypt(secret.encode(), aad=totp_aad(user_id))


def enrolment_qr(secret: str, email: str) -> str:
    """The QR code of the ``otpauth://`` URI as inline SVG, safe under our CSP (no style attributes)."""
    svg = _STYLE_ATTRIBUTE.sub("", qr_svg(provisioning_uri(secret, email)))
    if not svg.lstrip().startswith("<svg") or _FORBIDDEN.search(svg):
        raise ValueError("the QR code SVG contains markup we do not serve")
    return svg


def enrolment_uri(secret: str, email: str) -> str:
    """The ``otpauth://totp/...`` address the QR code holds (an authenticator app on this device opens it)."""
    return provisioning_uri(secret, email)


def group_secret(secret: str) -> str:
    """``ABCD EFGH ...``: easier to type into an app by hand (apps ignore the spaces)."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


async def confirm_enrolment(db: AsyncSession, settings: Settings, keyring: Keyring, user: User, code: str) -> list[str]:
    """Turn 2FA on if ``code`` comes from the pending secret; returns the new recovery codes (show them once)."""
    if user.has_2fa:
        raise TwoFactorError("Two-factor authentication is already on.")
    secret = secret_of(keyring, user)
    if secret is None:
        raise TwoFactorError("Start again: scan a new QR code with your app.")
    step = verify_totp(secret, code, last_used_step=user.totp_last_step)
    if step is None:
        raise TwoFactorError("That code is not right. Enter the 6-digit code your app shows now.")
    user.totp_enabled_at = now()
    user.totp_last_step = step
    return await replace_recovery_codes(db, settings, user.id)


async def replace_recovery_codes(db: AsyncSession, settings: Settings, user_id: uuid.UUID) -> list[str]:
    """Delete every recovery code of the user and store the hashes of ten new ones; returns the codes."""
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
    codes = generate_recovery_codes(RECOVERY_CODE_COUNT)
    db.add_all(RecoveryCode(user_id=user_id, code_hash=hash_recovery_code(code, _pepper(settings))) for code in codes)
    await db.flush()
    return codes


async def unused_recovery_codes(db: AsyncSession, user_id: uuid.UUID) -> int:
    count = await db.scalar(
        select(func.count())
        .select_from(RecoveryCode)
        .where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
    )
    return int(count or 0)


def disable(user: User) -> None:
    """Turn 2FA off; the caller also deletes the recovery codes (:func:`delete_recovery_codes`)."""
    user.totp_secret_enc = None
    user.totp_enabled_at = None
    user.totp_last_step = None


async def delete_recovery_codes(db: AsyncSession, user_id: uuid.UUID) -> None:
    await db.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))


async def accept_second_factor(
    db: AsyncSession, settings: Settings, keyring: Keyring, user: User, code: str
) -> str | None:
    """Accept a current TOTP code or an unused recovery code of ``user``, using it up; how, or None.

    Returns ``"totp"`` or ``"recovery_code"``. Nothing changes when the code is refused.
    """
    code = code.strip()
    if not code or not user.has_2fa:
        return None
    if code.replace(" ", "").isdigit():
        secret = secret_of(keyring, user)
        step = verify_totp(secret, code, last_used_step=user.totp_last_step) if secret else None
        if step is None:
            return None
        user.totp_last_step = step
        return "totp"
    unused = list(
        await db.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None)))
    )
    index = match_recovery_code(code, [row.code_hash for row in unused], _pepper(settings))
    if index is None:
        return None
    unused[index].used_at = now()
    return "recovery_code"


async def prove_identity(
    db: AsyncSession, settings: Settings, keyring: Keyring, user: User, *, password: str, code: str
) -> str | None:
    """A fresh proof for a sensitive change: the current password, or a 2FA code. How it was proven, or None."""
    if password and user.password_hash is not None:
        if await to_thread.run_sync(verify_password, user.password_hash, password):
            return "password"
    if code:
        return await accept_second_factor(db, settings, keyring, user, code)
    return None
