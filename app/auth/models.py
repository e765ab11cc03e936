"""Platform accounts: users, their server-side sessions, recovery codes, password resets (schema ``public``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, String, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


def _uuid_pk() -> Mapped[uuid.UUID]:
    return mapped_column(UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()"))


class User(PublicBase):
    __tablename__ = "users"

    id: Mapped[uuid.UUID] = _uuid_pk()
    # Stored lower-cased; unique.
    email: Mapped[str] = mapped_column(String(320), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # TOTP secret, encrypted with the master key (AAD = user id); set while enrolling, enabled on confirmation.
    totp_secret_enc: Mapped[str | None] = mapped_column(String(512))
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The last accepted 30-second step: a code is accepted once (ASVS 6.5.1).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    # An IANA zone ("Europe/Paris") chosen on the profile page; "" follows the browser (app.web.timezones).
    time_zone: Mapped[str] = mapped_column(String(64), default="", server_default="")
    # The workspace this person last opened: signing in goes back there.
    last_workspace_id: Mapped[str | None] = mapped_column(ForeignKey("public.workspaces.id", ondelete="SET NULL"))

    @property
    def has_2fa(self) -> bool:
        return self.totp_enabled_at is not None


class UserSession(PublicBase):
    """A signed-in browser. ``token_hash`` is the SHA-256 of the cookie's token, never the token itself."""

    __tablename__ = "user_sessions"

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("public.users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Absolute end of the session, whatever the activity.
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # When the user last proved who they are (password or 2FA), for actions that need a fresh proof.
    authenticated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    # "password" or "sso": a workspace that starts requiring SSO ends its members' password sessions.
    auth_method: Mapped[str] = mapped_column(String(16), default="password", server_default="password")


class RecoveryCode(PublicBase):
    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("public.users.id", ondelete="CASCADE"), index=True)
    code_hash: Mapped[str] = mapped_column(String(128))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class PasswordReset(PublicBase):
    __tablename__ = "password_resets"

    id: Mapped[uuid.UUID] = _uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("public.users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
