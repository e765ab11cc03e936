"""A person's linked identities, as their account shows them: list, unlink, and the lines the reset mail lists.

No HTTP here; services flush, the caller commits. Unlinking mails the account holder (so does linking, in
:mod:`app.sso.signin`): a link they did not make is the first sign of a taken account.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User
from app.errors import Conflict
from app.mail import messages
from app.mail.service import queue
from app.sso.models import SsoIdentity
from app.sso.signin import LINK_DESCRIPTIONS, signs_in_by_itself
from app.tenants.models import Workspace


class UnlinkRefused(Conflict):
    """Unlinking would leave the account with no way in; the message says what to do first."""


@dataclass(frozen=True)
class LinkedIdentity:
    id: uuid.UUID
    issuer: str
    workspace_id: str
    workspace_name: str
    email_at_link: str
    how: str
    linked_at: datetime
    last_used_at: datetime | None


async def linked_identities(db: AsyncSession, user_id: uuid.UUID) -> list[LinkedIdentity]:
    rows = await db.execute(
        select(SsoIdentity, Workspace.name)
        .join(Workspace, Workspace.id == SsoIdentity.workspace_id)
        .where(SsoIdentity.user_id == user_id)
        .order_by(SsoIdentity.created_at)
    )
    return [
        LinkedIdentity(
            id=identity.id,
            issuer=identity.issuer,
            workspace_id=identity.workspace_id,
            workspace_name=name,
            email_at_link=identity.email_at_link,
            how=LINK_DESCRIPTIONS.get(identity.link_method, identity.link_method),
            linked_at=identity.created_at,
            last_used_at=identity.last_login_at,
        )
        for identity, name in rows
    ]


def describe(identity: LinkedIdentity) -> str:
    """One line for a mail: "https://login.acme.test (workspace Acme, as ada@acme.test)"."""
    who = f", as {identity.email_at_link}" if identity.email_at_link else ""
    return f"{identity.issuer} (workspace {identity.workspace_name}{who})"


async def unlink_identity(db: AsyncSession, user: User, identity_id: uuid.UUID) -> LinkedIdentity | None:
    """Unlink one of ``user``'s identities; None if they have no such identity.

    Raises UnlinkRefused when it is the account's only way in (no password and no other identity that signs
    in by itself).
    """
    mine = {identity.id: identity for identity in await linked_identities(db, user.id)}
    found = mine.get(identity_id)
    if found is None:
        return None
    # Lock the account, so two unlinks at once cannot both see "there is another way in".
    fresh = await db.get(User, user.id, with_for_update=True)
    assert fresh is not None
    others = await db.scalars(select(SsoIdentity).where(SsoIdentity.user_id == user.id, SsoIdentity.id != found.id))
    other_way_in = False
    for other in others:
        other_way_in = other_way_in or await signs_in_by_itself(db, other)
    if fresh.password_hash is None and not other_way_in:
        raise UnlinkRefused(
            "This is the only way into your account: it has no password and no other identity that signs you "
            "in. Set a password first (we e-mail you a link), then unlink it."
        )
    identity = await db.get(SsoIdentity, found.id)
    if identity is not None:
        await db.delete(identity)
    await queue(db, messages.identity_unlinked(describe(found)), kind="sso-identity-unlinked", to=fresh.email)
    await db.flush()
    return found
