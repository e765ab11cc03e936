"""The LLM tables of a workspace (tenant tables, one set per workspace schema).

* ``llm_providers``: where calls go (an OpenAI-compatible endpoint or Anthropic), with the API key sealed by the
  secrets service (purpose ``llm.provider_key``, bound to the provider's row) and a masked preview beside it.
* ``llm_models``: the model catalogue, per provider: list prices per million tokens and the context window.
* ``llm_budget``: the workspace's monthly spending cap (one row).
* ``llm_tokens``: the gateway's short-lived tokens, one per agent step or session (only their SHA-256).
* ``llm_calls``: the call log, one row per call through the gateway; history, so append-only.

Money is in US dollars, as ``Numeric`` (never floats): prices per million tokens, costs per call.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from decimal import Decimal

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Integer,
    Numeric,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from app.db import TENANT_SCHEMA, TenantBase

PRICE = Numeric(12, 6)
"""USD per million tokens (six decimals: a price of $0.000001 per million is still representable)."""
COST = Numeric(20, 9)
"""USD per call, to the nano-dollar: a single token of the cheapest model still costs something."""


class LlmProvider(TenantBase):
    __tablename__ = "llm_providers"
    __table_args__ = (
        CheckConstraint("kind IN ('openai', 'anthropic')", name="kind"),
        UniqueConstraint("slug"),
    )

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    # The first part of a model string ("openrouter" in "openrouter/anthropic/claude-sonnet-4.5").
    slug: Mapped[str] = mapped_column(String(40))
    label: Mapped[str] = mapped_column(String(80))
    # The protocol: "openai" (chat completions, any compatible endpoint) or "anthropic" (messages).
    kind: Mapped[str] = mapped_column(String(16))
    # Which preset it was made from (openai, openrouter, ollama, vllm, custom, anthropic, demo): defaults only.
    preset: Mapped[str] = mapped_column(String(16))
    # Empty for the demo model, whose address comes from the settings of the process (`marid dev`'s).
    base_url: Mapped[str] = mapped_column(String(500), default="")
    # The key sealed under the workspace's data key; NULL when the endpoint needs none (a local Ollama).
    api_key_sealed: Mapped[str | None] = mapped_column(Text)
    # "sk-…abcd": what pages show instead of the key.
    key_preview: Mapped[str] = mapped_column(String(40), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_tested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_test_ok: Mapped[bool | None] = mapped_column(Boolean)
    last_test_message: Mapped[str] = mapped_column(String(500), default="")


class LlmModel(TenantBase):
    __tablename__ = "llm_models"
    __table_args__ = (UniqueConstraint("provider_id", "name"),)

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    provider_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey(f"{TENANT_SCHEMA}.llm_providers.id", ondelete="CASCADE"), index=True
    )
    # The model's name at the provider ("gpt-4.1", "anthropic/claude-sonnet-4.5" at OpenRouter).
    name: Mapped[str] = mapped_column(String(200))
    label: Mapped[str] = mapped_column(String(120), default="")
    # USD per million tokens; NULL: unknown (its calls' costs are flagged approximate).
    input_price: Mapped[Decimal | None] = mapped_column(PRICE)
    output_price: Mapped[Decimal | None] = mapped_column(PRICE)
    cache_read_price: Mapped[Decimal | None] = mapped_column(PRICE)
    cache_write_price: Mapped[Decimal | None] = mapped_column(PRICE)
    context_window: Mapped[int | None] = mapped_column(Integer)
    # "seeded" from Marid's price list (prices as of ``prices_as_of``) or "custom" (added or edited here).
    source: Mapped[str] = mapped_column(String(16), default="custom")
    prices_as_of: Mapped[date | None] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LlmBudget(TenantBase):
    """The workspace's budget: a single row (id 1)."""

    __tablename__ = "llm_budget"
    __table_args__ = (CheckConstraint("id = 1", name="single_row"),)

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True, default=1)
    # USD per calendar month (UTC); NULL: no cap.
    monthly_cap: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    # USD per run or swarm (every call of its steps), for runs and swarms whose steps start after it is set.
    run_cap: Mapped[Decimal | None] = mapped_column(Numeric(12, 2))
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class LlmToken(TenantBase):
    """A gateway token: what one agent step (or session) may spend, and until when."""

    __tablename__ = "llm_tokens"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    agent_id: Mapped[str] = mapped_column(String(64))
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    step_id: Mapped[str | None] = mapped_column(String(64), index=True)
    session_id: Mapped[str | None] = mapped_column(String(64), index=True)
    # The run's spending cap (USD), counted over every call of the run; NULL: none.
    run_cap: Mapped[Decimal | None] = mapped_column(Numeric(12, 4))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class LlmCall(TenantBase):
    """One call through the gateway. ``input_tokens`` counts the prompt *without* its cached part, so the four
    token counts add up to what was processed and each has its own price."""

    __tablename__ = "llm_calls"
    # The workspace role may INSERT and SELECT only (app.tenants.grants): what was spent stays spent.
    __table_args__ = (
        CheckConstraint("status IN ('ok', 'error', 'refused')", name="status"),
        {"info": {"append_only": True}},
    )

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    # Chosen by the gateway: a record written twice (the sweep after a crash) is inserted once.
    call_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), unique=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)
    token_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    agent_id: Mapped[str] = mapped_column(String(64), index=True)
    run_id: Mapped[str | None] = mapped_column(String(64), index=True)
    step_id: Mapped[str | None] = mapped_column(String(64))
    session_id: Mapped[str | None] = mapped_column(String(64))
    # The model string the caller asked for ("openai/gpt-4.1"), its provider's slug and protocol.
    model: Mapped[str] = mapped_column(String(250), index=True)
    provider: Mapped[str] = mapped_column(String(40), default="")
    provider_kind: Mapped[str] = mapped_column(String(16), default="")
    stream: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[str] = mapped_column(String(16))
    # What the caller was answered: 200, or the error's status (for a failure mid-stream, the one its error event
    # stands for: the stream itself had begun with 200).
    http_status: Mapped[int] = mapped_column(SmallInteger)
    error: Mapped[str] = mapped_column(String(1000), default="")
    input_tokens: Mapped[int] = mapped_column(Integer, default=0)
    output_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_read_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cache_write_tokens: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[Decimal] = mapped_column(COST, default=Decimal(0))
    # The model's price (or part of it) was unknown: the cost counts only what is known.
    cost_approximate: Mapped[bool] = mapped_column(Boolean, default=False)
    first_token_ms: Mapped[int | None] = mapped_column(Integer)
    total_ms: Mapped[int] = mapped_column(Integer, default=0)
    # OpenAI's finish reasons (stop, length, tool_calls, content_filter), translated for Anthropic.
    stop_reason: Mapped[str | None] = mapped_column(String(32))
    tool_calls: Mapped[int] = mapped_column(Integer, default=0)
