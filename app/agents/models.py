"""Agents (a workspace table: each workspace's agents live in its own schema).

An agent is a persona (four Markdown sections), the model it runs on, the tools it may use and its pulse
settings. Its id is a slug chosen by people (``software-engineer``), unique in the workspace, and never changes:
pipelines name agents by it. ``created_by`` and ``updated_by`` are user ids (people live in the platform
schema, which a workspace's tables cannot reference).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, Integer, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.agents.pulse import PulseSettings
from app.db import TenantBase


class Agent(TenantBase):
    __tablename__ = "agents"

    id: Mapped[str] = mapped_column(String(48), primary_key=True)
    name: Mapped[str] = mapped_column(String(80))
    role: Mapped[str] = mapped_column(String(120), server_default="")
    emoji: Mapped[str] = mapped_column(String(16), server_default="")
    identity: Mapped[str] = mapped_column(Text, server_default="")
    personality: Mapped[str] = mapped_column(Text, server_default="")
    procedures: Mapped[str] = mapped_column(Text, server_default="")
    decision_framework: Mapped[str] = mapped_column(Text, server_default="")
    # "provider/model"; NULL: the workspace's default model.
    model: Mapped[str | None] = mapped_column(String(200))
    tools: Mapped[list[str]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    # The starter it was made from (app/agents/roster), if any.
    template: Mapped[str | None] = mapped_column(String(48))

    pulse_enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    pulse_interval_minutes: Mapped[int] = mapped_column(Integer, server_default=text("30"))
    pulse_offset_minutes: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    pulse_blackouts: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    pulse_max_consecutive_skips: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    pulse_max_concurrent: Mapped[int] = mapped_column(Integer, server_default=text("2"))
    wake_cooldown_seconds: Mapped[int] = mapped_column(Integer, server_default=text("300"))
    wake_max_per_day: Mapped[int] = mapped_column(Integer, server_default=text("12"))
    wake_max_per_pair_per_day: Mapped[int] = mapped_column(Integer, server_default=text("5"))
    wake_max_session_minutes_per_day: Mapped[int] = mapped_column(Integer, server_default=text("120"))

    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    created_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    updated_by: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))

    @property
    def pulse(self) -> PulseSettings:
        return PulseSettings.from_columns(self)
