"""The JSON shapes of the LLM operations (providers, the model catalogue, calls, usage, the budget).

Money is a decimal string in US dollars (``"0.004215"``), never a float. A provider's key goes in, once, and
never comes out: answers carry only its masked preview.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from app.api.schemas import Body, page_of

Money = str
Price = str | None


class ModelOut(BaseModel):
    id: uuid.UUID
    provider_id: uuid.UUID
    model_string: str = Field(description="What agents name: `provider/model`.")
    name: str = Field(description="The model's name at the provider.")
    label: str
    input_price: Price = Field(description="USD per million input tokens; null: unknown.")
    output_price: Price
    cache_read_price: Price
    cache_write_price: Price
    context_window: int | None
    source: Literal["seeded", "custom"] = Field(description="seeded: Marid's list price as of `prices_as_of`.")
    prices_as_of: date | None


class ProviderOut(BaseModel):
    id: uuid.UUID
    slug: str = Field(description="The first part of model strings.")
    label: str
    kind: Literal["openai", "anthropic"]
    preset: str
    base_url: str = Field(description="Empty for the demo model (its address is the deployment's).")
    key_preview: str = Field(description="The key's first and last characters; the key itself is never shown.")
    has_key: bool
    created_at: datetime
    updated_at: datetime
    last_tested_at: datetime | None
    last_test_ok: bool | None
    last_test_message: str
    models: list[ModelOut]


ProviderList = page_of(ProviderOut, "ProviderList")


class ProviderCreate(Body):
    preset: Literal["openai", "anthropic", "openrouter", "ollama", "vllm", "custom", "demo"] = Field(
        description="What kind of provider; `demo` is the scripted demo model (only under `marid dev`)."
    )
    api_key: str = Field("", max_length=4000, description="Sealed at once; never returned.")
    slug: str = Field("", max_length=100, description="Defaults to the preset's name (`openai`, ...).")
    label: str = Field("", max_length=200)
    base_url: str = Field("", max_length=600, description="Defaults to the preset's URL; required for `custom`.")


class ProviderPatch(Body):
    """Fields to change; omitted fields stay as they are. An `api_key` replaces the key."""

    label: str | None = Field(None, max_length=200)
    base_url: str | None = Field(None, max_length=600)
    api_key: str | None = Field(None, max_length=4000)


class ConnectionTestOut(BaseModel):
    ok: bool
    message: str = Field(description="What the provider said (on failure, its error message).")
    models: list[str] = Field(description="The models the provider lists, when it lists them.")


class ModelCreate(Body):
    name: str = Field(max_length=300)
    label: str = Field("", max_length=200)
    input_price: str = Field("", max_length=30, description="USD per million tokens; empty: unknown.")
    output_price: str = Field("", max_length=30)
    cache_read_price: str = Field("", max_length=30)
    cache_write_price: str = Field("", max_length=30)
    context_window: int | None = Field(None, ge=1, le=100_000_000)


class ModelPatch(Body):
    """The model's new label, prices and context window (all of them: omitted prices become unknown)."""

    label: str = Field("", max_length=200)
    input_price: str = Field("", max_length=30)
    output_price: str = Field("", max_length=30)
    cache_read_price: str = Field("", max_length=30)
    cache_write_price: str = Field("", max_length=30)
    context_window: int | None = Field(None, ge=1, le=100_000_000)


class CallOut(BaseModel):
    id: int
    call_id: uuid.UUID
    at: datetime
    agent_id: str
    run_id: str | None
    step_id: str | None
    session_id: str | None
    model: str
    provider: str
    status: Literal["ok", "error", "refused"]
    http_status: int
    error: str
    stream: bool
    input_tokens: int = Field(description="Prompt tokens not read from or written to the cache.")
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost: Money
    cost_approximate: bool = Field(description="Some tokens had no known price: `cost` counts only known ones.")
    first_token_ms: int | None
    total_ms: int
    stop_reason: str | None
    tool_calls: int


CallList = page_of(CallOut, "CallList")


class UsageGroupOut(BaseModel):
    key: str = Field(description="The day (YYYY-MM-DD), model string or agent id.")
    calls: int
    errors: int = Field(description="Calls that failed or were refused.")
    input_tokens: int
    output_tokens: int
    cache_read_tokens: int
    cache_write_tokens: int
    cost: Money
    approximate: bool


class UsageOut(BaseModel):
    start: date
    end: date
    total: UsageGroupOut
    by_day: list[UsageGroupOut]
    by_model: list[UsageGroupOut]
    by_agent: list[UsageGroupOut]


class BudgetOut(BaseModel):
    monthly_cap: Money | None = Field(description="USD per calendar month (UTC); null: no cap.")
    month: str = Field(description="The current month, YYYY-MM.")
    spent_this_month: Money
    percent: int | None = Field(description="Share of the cap spent (rounded up); null without a cap.")
    run_cap: Money | None = Field(
        description="USD per run or swarm, over every call of its steps; null: no cap. Steps carry the cap in force "
        "when they start."
    )


class BudgetIn(Body):
    monthly_cap: str | None = Field(
        description="USD, whole cents, like `250` or `99.50`; null or empty removes the cap.", max_length=30
    )
    run_cap: str | None = Field(
        default=None,
        description="USD per run or swarm, whole cents; null or empty removes it; left out, it stays as it is.",
        max_length=30,
    )
