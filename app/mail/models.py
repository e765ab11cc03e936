"""Outgoing mail is written to an outbox table in the same transaction as the change that caused it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Identity, Index, Integer, String, Text, func, text
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class OutboxMessage(PublicBase):
    __tablename__ = "email_outbox"
    __table_args__ = (
        # What the sender looks for: messages still to send, by when they are due.
        Index("ix_email_outbox_due", "next_attempt_at", postgresql_where=text("sent_at IS NULL AND dead_at IS NULL")),
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(40))
    # Set for mail sent on behalf of a workspace (invitations): its delivery shows in that workspace's activity.
    workspace_id: Mapped[str | None] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"))
    to_address: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(String(200))
    body_text: Mapped[str] = mapped_column(Text)
    # The HTML alternative (app.mail.messages renders both); NULL for mail queued before mail had one.
    body_html: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(String(500))
    # Not tried before this moment: the backoff after a failure, and the lease while a worker is sending it.
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Given up on after too many failed attempts; never tried again.
    dead_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
