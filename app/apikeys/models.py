"""API keys (schema ``public``: a request names its key before anyone knows the workspace).

A key belongs to exactly one workspace. A *personal* key (``user_id`` set) acts as its owner there, never
with more than the owner's current role; a *service* key (``user_id`` NULL) is not tied to a person and acts
with the role its scope implies. Only the SHA-256 of the key is stored, next to its public ``lookup_id``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, String, func, text
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class ApiKey(PublicBase):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint("kind IN ('personal', 'service')", name="kind"),
        CheckConstraint("scope IN ('read', 'write', 'admin')", name="scope"),
        # Personal keys have an owner, service keys never do.
        CheckConstraint("(kind = 'personal') = (user_id IS NOT NULL)", name="owner"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(80))
    # The first 8 characters of the key's random body: public, shown as ``marid_pk_AbCd1234…``.
    lookup_id: Mapped[str] = mapped_column(String(8), unique=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    # The highest scope granted (read < write < admin); each includes the ones below it.
    scope: Mapped[str] = mapped_column(String(8))
    user_id: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="CASCADE"), index=True
    )
    created_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="SET NULL")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Written at most once a minute per key, not on every request.
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_used_ip: Mapped[str | None] = mapped_column(String(64))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_by: Mapped[uuid.UUID | None] = mapped_column(
        UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="SET NULL")
    )
