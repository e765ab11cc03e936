"""A person's profile: their name, their time zone, and changing their e-mail address (confirmed from the new
address, announced to the old one). No HTTP here; callers own the transaction."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.auth.service import email_problem, normalise_email, user_by_email
from app.auth.sessions import now
from app.config import Settings
from app.errors import Invalid
from app.mail import messages
from app.mail.service import queue
from app.security.single_line import single_line_problem
from app.security.tokens import BadToken, sign, unsign

EMAIL_CHANGE_PURPOSE = "email-change"
EMAIL_CHANGE_MAX_AGE = 24 * 3600
NAME_MAX = 120


class ProfileError(Invalid):
    """What was typed on the profile page cannot be used; ``errors`` names the field."""


def clean_name(raw: str) -> str:
    if problem := single_line_problem(raw, "Your name"):
        raise ProfileError(problem, field="display_name")
    name = " ".join(raw.split())
    if len(name) > NAME_MAX:
        raise ProfileError(f"Keep your name under {NAME_MAX} characters.", field="display_name")
    return name


def save_profile(user: User, *, display_name: str, time_zone: str, known_zones: frozenset[str]) -> bool:
    """Set the name and the time zone ("" follows the browser); whether anything changed."""
    name = clean_name(display_name)
    if time_zone and time_zone not in known_zones:
        raise ProfileError("Choose a time zone from the list.", field="time_zone")
    changed = (user.display_name, user.time_zone) != (name, time_zone)
    user.display_name, user.time_zone = name, time_zone
    return changed


async def request_email_change(db: AsyncSession, settings: Settings, user: User, new_address: str) -> str:
    """Mail a confirmation link to ``new_address``; the account keeps its address until it is opened."""
    address = normalise_email(new_address)
    if problem := email_problem(address):
        raise ProfileError(problem, field="email")
    if address == user.email:
        raise ProfileError("That is already your address.", field="email")
    # A taken address is refused here: the person asking is signed in, and the other account is not told.
    if await user_by_email(db, address) is not None:
        raise ProfileError("Another account uses that address.", field="email")
    token = sign(
        settings.secret_key.get_secret_value(), EMAIL_CHANGE_PURPOSE, {"u": str(user.id), "o": user.email, "n": address}
    )
    link = settings.base_url.rstrip("/") + f"/account/email/{token}"
    await queue(db, messages.email_change(link, address), kind="email-change", to=address)
    return address


@dataclass(frozen=True)
class EmailChanged:
    user_id: uuid.UUID
    old: str
    new: str


async def confirm_email_change(db: AsyncSession, settings: Settings, token: str) -> EmailChanged:
    """Move the account to the new address in the link; BadToken (with a message for the person) otherwise."""
    value = unsign(settings.secret_key.get_secret_value(), EMAIL_CHANGE_PURPOSE, token, EMAIL_CHANGE_MAX_AGE)
    if not isinstance(value, dict):
        raise BadToken("This link is not valid.")
    try:
        user = await db.get(User, uuid.UUID(str(value.get("u"))), with_for_update=True)
    except ValueError as error:
        raise BadToken("This link is not valid.") from error
    old, new = str(value.get("o", "")), str(value.get("n", ""))
    if user is None or user.email != old:
        raise BadToken("This link was made for an address the account no longer has. Ask for a new one.")
    if await user_by_email(db, new) is not None:
        raise BadToken("Another account uses that address now.")
    user.email = new
    user.email_verified_at = now()
    await queue(db, messages.email_changed(old, new), kind="email-changed", to=old)
    return EmailChanged(user.id, old, new)
