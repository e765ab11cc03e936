"""Password reset by e-mail link (ASVS 6.4.x): single use, 30 minutes, never a way around 2FA.

The link carries a random token; only its SHA-256 is stored. Asking for a link answers the same whether or
not the address has an account. Using it needs the new password and, for an account with 2FA, a current
TOTP code or a recovery code too; success ends every session of the account.

No HTTP here; callers own the transaction.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import timedelta

from anyio import to_thread
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from app.account.twofactor import accept_second_factor
from app.auth.models import PasswordReset, User
from app.auth.service import FormErrors, user_by_email
from app.auth.sessions import now, revoke_all_sessions
from app.config import Settings
from app.mail import messages
from app.mail.service import queue
from app.security.crypto import Keyring
from app.security.passwords import hash_password, password_problem
from app.security.tokens import new_token, token_hash
from app.sso.identities import describe, linked_identities

RESET_LIFETIME = timedelta(minutes=30)
# Tokens are 43 urlsafe characters; anything far longer is not one of ours and is not looked up.
_MAX_TOKEN_CHARS = 100


class ResetLinkInvalid(Exception):
    """The link is unknown, used or expired; the message says which, for the user."""


@dataclass
class ResetOutcome:
    user_id: uuid.UUID
    email: str
    # "password", "password+totp" or "password+recovery_code": for the audit log.
    method: str
    sessions_ended: int


async def request_reset(db: AsyncSession, settings: Settings, email: str) -> bool:
    """Mail a reset link if ``email`` has an account; whether one was sent (never show this to the user)."""
    user = await user_by_email(db, email)
    if user is None:
        return False
    token = new_token()
    db.add(PasswordReset(user_id=user.id, token_hash=token_hash(token), expires_at=now() + RESET_LIFETIME))
    link = settings.base_url.rstrip("/") + f"/password/reset/{token}"
    # A reset does not end what single sign-on can do for the account, so the mail says what that is.
    identities = [describe(identity) for identity in await linked_identities(db, user.id)]
    await queue(db, messages.password_reset(link, identities), kind="password-reset", to=user.email)
    return True


async def find_reset(db: AsyncSession, token: str, *, lock: bool = False) -> tuple[PasswordReset, User]:
    """The usable reset and its user for a link's token; raises ResetLinkInvalid otherwise."""
    if not token or len(token) > _MAX_TOKEN_CHARS:
        raise ResetLinkInvalid("This link is not valid. Ask for a new one.")
    statement = (
        select(PasswordReset, User)
        .join(User, User.id == PasswordReset.user_id)
        .where(PasswordReset.token_hash == token_hash(token))
    )
    if lock:
        statement = statement.with_for_update()
    row = (await db.execute(statement)).first()
    if row is None:
        raise ResetLinkInvalid("This link is not valid. Ask for a new one.")
    reset, user = row
    if reset.used_at is not None:
        raise ResetLinkInvalid("This link was already used. Each link works once; ask for a new one.")
    if reset.expires_at <= now():
        raise ResetLinkInvalid("This link has expired (links work for 30 minutes). Ask for a new one.")
    return reset, user


async def complete_reset(
    db: AsyncSession, settings: Settings, keyring: Keyring, token: str, *, password: str, code: str
) -> ResetOutcome:
    """Set the new password if everything checks out; raises ResetLinkInvalid or FormErrors (nothing changed)."""
    reset, user = await find_reset(db, token, lock=True)
    if problem := password_problem(password, email=user.email):
        raise FormErrors({"password": problem})
    method = "password"
    if user.has_2fa:
        if not code.strip():
            raise FormErrors({"code": "Enter a code from your authenticator app, or a recovery code."})
        # Lock the user too, so a TOTP code cannot be accepted twice by concurrent requests.
        await db.refresh(user, with_for_update=True)
        accepted = await accept_second_factor(db, settings, keyring, user, code)
        if accepted is None:
            raise FormErrors({"code": "That code is not right, or was already used. Try the newest one."})
        method = f"password+{accepted}"
    user.password_hash = await to_thread.run_sync(hash_password, password)
    moment = now()
    user.password_changed_at = moment
    # The link came to this address, so it is confirmed now if it was not before.
    if user.email_verified_at is None:
        user.email_verified_at = moment
    # This link and every other outstanding one of the account stop working.
    await db.execute(
        update(PasswordReset)
        .where(PasswordReset.user_id == user.id, PasswordReset.used_at.is_(None))
        .values(used_at=moment)
    )
    ended = await revoke_all_sessions(db, user.id)
    return ResetOutcome(user_id=user.id, email=user.email, method=method, sessions_ended=ended)
