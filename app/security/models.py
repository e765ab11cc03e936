"""Workspace data keys (``public.workspace_keys``): one random key per workspace, stored only wrapped.

The row is deleted with its workspace, and with it every secret the workspace ever sealed becomes unreadable,
wherever a copy of it (a backup, a log) may linger.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, String, Text, func
from sqlalchemy.orm import Mapped, mapped_column

from app.db import PublicBase


class WorkspaceKey(PublicBase):
    __tablename__ = "workspace_keys"

    workspace_id: Mapped[str] = mapped_column(ForeignKey("public.workspaces.id", ondelete="CASCADE"), primary_key=True)
    # The data key encrypted under a master key, bound to this workspace (``Keyring.wrap_data_key``).
    wrapped_key: Mapped[str] = mapped_column(Text)
    # Which master key wrapped it (also in the ciphertext's header): rotation finds what is left by it.
    master_key_id: Mapped[str] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When `marid keys rotate` last re-wrapped it.
    rotated_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
