"""Sign-up, e-mail verification, password sign-in. No HTTP here; callers own the transaction."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field

from anyio import to_thread
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.auth.sessions import now
from app.config import Settings
from app.mail import messages
from app.mail.service import queue
from app.security.passwords import hash_password, password_problem, verify_password
from app.security.single_line import single_line_problem
from app.security.tokens import BadToken, sign, unsign

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
VERIFY_PURPOSE = "verify-email"
VERIFY_MAX_AGE = 48 * 3600
# Verified against when the e-mail is unknown, so a wrong address takes as long as a wrong password.
_DUMMY_HASH = hash_password("marid-dummy-password-for-timing")


@dataclass
class FormErrors(Exception):
    """Field name -> message; ``_form`` for errors about the whole form."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(f"{k}: {v}" for k, v in self.errors.items())


def normalise_email(raw: str) -> str:
    return raw.strip().lower()


def email_problem(email: str) -> str | None:
    if not email:
        return "Enter your e-mail address."
    # An address goes into the To header of our mail: no control characters, whatever else it may hold.
    if single_line_problem(email, "An e-mail address"):
        return "Enter a valid e-mail address, like name@example.com (no control characters)."
    if len(email) > 320 or not EMAIL_PATTERN.match(email):
        return "Enter a valid e-mail address, like name@example.com."
    return None


async def user_by_email(db: AsyncSession, email: str) -> User | None:
    return await db.scalar(select(User).where(func.lower(User.email) == normalise_email(email)))


def _link(settings: Settings, path: str) -> str:
    return settings.base_url.rstrip("/") + path


async def register(
    db: AsyncSession,
    settings: Settings,
    *,
    email: str,
    password: str,
    display_name: str,
    next_path: str = "",
    browser: str = "",
    verified: bool = False,
) -> User | None:
    """Create an unverified account and mail the confirmation link (bound to ``browser``, see ``send_verification``).

    ``verified``: the address is already proven (the person opened an invitation mailed to it), so the account is
    confirmed at once and no confirmation mail goes out.

    Returns None (and mails the owner instead) when the address already has an account. Both cases do the same
    work, the password hashing included, so neither the answer nor its timing tells who has an account.
    """
    email = normalise_email(email)
    errors: dict[str, str] = {}
    if problem := email_problem(email):
        errors["email"] = problem
    # Names go into mail subjects and log lines: one line of text.
    if problem := single_line_problem(display_name, "Your name"):
        errors["display_name"] = problem
    display_name = " ".join(display_name.split())
    if len(display_name) > 120:
        errors["display_name"] = "Keep your name under 120 characters."
    if problem := password_problem(password, email=email):
        errors["password"] = problem
    if errors:
        raise FormErrors(errors)
    # Hashed whether or not the address is taken (and off the event loop: ~0.1 s of CPU).
    password_hash = await to_thread.run_sync(hash_password, password)
    if await user_by_email(db, email) is not None:
        mail = messages.already_registered(_link(settings, "/login"), _link(settings, "/password/forgot"))
        await queue(db, mail, kind="already-registered", to=email)
        return None
    user = User(email=email, display_name=display_name, password_hash=password_hash, password_changed_at=now())
    if verified:
        user.email_verified_at = now()
    db.add(user)
    await db.flush()
    if not verified:
        await send_verification(db, settings, user, next_path=next_path, browser=browser)
    return user


async def send_verification(
    db: AsyncSession, settings: Settings, user: User, *, next_path: str = "", browser: str = ""
) -> None:
    """Mail a confirmation link; ``next_path`` (a local path) is where the link sends the user afterwards.

    ``browser`` (the hash of a secret only the signing-up browser holds in a cookie) lets the first use of the
    link sign that browser in: sign-up itself starts no session, or a taken address would be answered
    differently.
    """
    value = {"u": str(user.id), "e": user.email}
    if next_path:
        value["n"] = next_path
    if browser:
        value["b"] = browser
    token = sign(settings.secret_key.get_secret_value(), VERIFY_PURPOSE, value)
    mail = messages.verify_email(_link(settings, f"/verify-email/{token}"), user.display_name)
    await queue(db, mail, kind="verify-email", to=user.email)


@dataclass(frozen=True)
class Confirmation:
    user: User
    # Where the link sends the user ("" for the default).
    next_path: str
    # This use of the link confirmed the address (False when it was already confirmed).
    first_use: bool
    # The browser the link was made for (see send_verification); "" for none.
    browser: str


async def confirm_email(db: AsyncSession, settings: Settings, token: str) -> Confirmation:
    """Mark the address in a verification link as confirmed. Raises BadToken with a user-facing message."""
    value = unsign(settings.secret_key.get_secret_value(), VERIFY_PURPOSE, token, VERIFY_MAX_AGE)
    if not isinstance(value, dict):
        raise BadToken("This link is not valid.")
    try:
        user = await db.get(User, uuid.UUID(str(value.get("u"))))
    except ValueError as error:
        raise BadToken("This link is not valid.") from error
    # A link for an address the account no longer has is useless.
    if user is None or user.email != value.get("e"):
        raise BadToken("This link is not valid.")
    first_use = user.email_verified_at is None
    if first_use:
        user.email_verified_at = now()
    return Confirmation(user, str(value.get("n", "")), first_use, str(value.get("b", "")))


async def check_password(db: AsyncSession, email: str, password: str) -> User | None:
    """The user whose e-mail and password these are, or None. Takes the same time for unknown addresses."""
    user = await user_by_email(db, email) if not email_problem(normalise_email(email)) else None
    if user is None or user.password_hash is None:
        verify_password(_DUMMY_HASH, password)
        return None
    return user if verify_password(user.password_hash, password) else None
