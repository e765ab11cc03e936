"""Provider presets, the seeded price list (``data/prices.json``), and what a call costs.

A model string is ``<provider slug>/<model name>``: the workspace's provider "openrouter" and its model
"anthropic/claude-sonnet-4.5" make ``openrouter/anthropic/claude-sonnet-4.5`` (the first ``/`` separates).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any, Literal

Kind = Literal["openai", "anthropic"]
MILLION = Decimal(1_000_000)
DEMO_PRESET = "demo"
DEMO_SLUG = "demo"


@dataclass(frozen=True)
class Preset:
    key: str
    label: str
    kind: Kind
    # The default base URL ("" for custom: the form asks for one).
    base_url: str
    needs_key: bool
    hint: str


PRESETS: dict[str, Preset] = {
    preset.key: preset
    for preset in (
        Preset("openai", "OpenAI", "openai", "https://api.openai.com/v1", True, "An API key from platform.openai.com."),
        Preset(
            "anthropic",
            "Anthropic",
            "anthropic",
            "https://api.anthropic.com",
            True,
            "A key from console.anthropic.com.",
        ),
        Preset("openrouter", "OpenRouter", "openai", "https://openrouter.ai/api/v1", True, "A key from openrouter.ai."),
        Preset("ollama", "Ollama", "openai", "http://127.0.0.1:11434/v1", False, "A local Ollama; no key needed."),
        Preset(
            "vllm", "vLLM", "openai", "http://127.0.0.1:8000/v1", False, "A vLLM server; its --api-key if it has one."
        ),
        Preset(
            "custom", "Custom (OpenAI-compatible)", "openai", "", False, "Any endpoint that speaks chat completions."
        ),
    )
}


@dataclass(frozen=True)
class ModelString:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


def parse_model_string(value: str) -> ModelString | None:
    """``provider/model`` split at its first ``/``; None when either part is missing or too long."""
    provider, slash, model = value.partition("/")
    if not slash or not provider or not model or len(provider) > 40 or len(model) > 200:
        return None
    return ModelString(provider, model)


@dataclass(frozen=True)
class Prices:
    """USD per million tokens; None where unknown."""

    input: Decimal | None = None
    output: Decimal | None = None
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None


@dataclass(frozen=True)
class Cost:
    usd: Decimal
    # Some tokens had no known price: ``usd`` counts only those that had one.
    approximate: bool


def cost_of(
    prices: Prices | None, *, input_tokens: int, output_tokens: int, cache_read_tokens: int, cache_write_tokens: int
) -> Cost:
    """What a call cost: each kind of token at its price (``input_tokens`` without the cached part)."""
    if prices is None:
        return Cost(Decimal(0), approximate=input_tokens + output_tokens + cache_read_tokens + cache_write_tokens > 0)
    total = Decimal(0)
    approximate = False
    for count, price in (
        (input_tokens, prices.input),
        (output_tokens, prices.output),
        (cache_read_tokens, prices.cache_read),
        (cache_write_tokens, prices.cache_write),
    ):
        if not count:
            continue
        if price is None:
            approximate = True
        else:
            total += count * price / MILLION
    return Cost(total.quantize(Decimal("0.000000001")), approximate)


@dataclass(frozen=True)
class SeedModel:
    name: str
    label: str
    prices: Prices
    context_window: int | None


@dataclass(frozen=True)
class PriceList:
    as_of: date
    source: str
    presets: dict[str, list[SeedModel]]


def _price(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


@cache
def price_list() -> PriceList:
    """The seeded models and list prices, per preset (read once)."""
    raw = json.loads((Path(__file__).parent / "data" / "prices.json").read_text())
    presets = {
        key: [
            SeedModel(
                name=item["name"],
                label=item["label"],
                prices=Prices(
                    _price(item["input"]),
                    _price(item["output"]),
                    _price(item["cache_read"]),
                    _price(item["cache_write"]),
                ),
                context_window=item.get("context_window"),
            )
            for item in items
        ]
        for key, items in raw["presets"].items()
    }
    return PriceList(as_of=date.fromisoformat(raw["as_of"]), source=raw["source"], presets=presets)


def money(value: Decimal) -> str:
    """Dollars as people read them: cents from a dollar up; below, up to six decimals (at least two)."""
    if value == 0:
        return "$0"
    if abs(value) >= 1:
        return f"${value:,.2f}"
    if abs(value) < Decimal("0.000001"):
        return "< $0.000001"
    text = f"{value:.6f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"${whole}.{decimals.ljust(2, '0')}"
