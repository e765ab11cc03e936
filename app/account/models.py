"""A person's own security log (schema ``public``): sign-ins, failed sign-ins, resets, 2FA and session changes.

These are events of the account, not of any workspace: they are shown to the account holder alone, on the
account security page, and never to the admins of the workspaces the person belongs to.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, String, func
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class AccountEvent(PublicBase):
    __tablename__ = "account_events"
    # The security page reads one person's newest events first.
    __table_args__ = (Index("ix_account_events_user_id_id", "user_id", "id"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), ForeignKey("public.users.id", ondelete="CASCADE"))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    action: Mapped[str] = mapped_column(String(64))
    ip: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(400), default="")
    details: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
