"""The model catalogue of a workspace: models of its providers with their prices per million tokens and their
context windows; add, change, remove. Like :mod:`app.llm.service`: tenant sessions, an actor, never a commit,
each change in the audit log."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid, NotFound
from app.llm.models import LlmModel, LlmProvider
from app.llm.service import as_uuid, get_provider
from app.security.single_line import single_line_problem

MAX_MODELS_PER_PROVIDER = 500
MAX_PRICE = Decimal("100000")
_MODEL_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/@+-]{0,199}")


@dataclass(frozen=True)
class ModelInput:
    """A catalogue entry as typed: prices in USD per million tokens ("" for unknown)."""

    name: str
    label: str = ""
    input_price: str = ""
    output_price: str = ""
    cache_read_price: str = ""
    cache_write_price: str = ""
    context_window: str = ""


def price_text(value: Decimal | None) -> str:
    """A price as typed back into a form: ``10``, ``0.075``; empty when unknown (never ``1E+1``)."""
    return "" if value is None else f"{value.normalize():f}"


async def add_model(
    session: AsyncSession, *, actor: Actor, provider_id: uuid.UUID | str, values: ModelInput
) -> LlmModel:
    provider = (await get_provider(session, provider_id)).provider
    name = values.name.strip()
    if not _MODEL_NAME.fullmatch(name):
        raise Invalid(
            "A model name is 1-200 letters, digits and . _ : / @ + - (as the provider spells it).", field="name"
        )
    model = LlmModel(id=uuid.uuid4(), provider_id=provider.id, name=name, source="custom")
    _apply_model_values(model, values)
    if (
        await session.scalar(select(LlmModel.id).where(LlmModel.provider_id == provider.id, LlmModel.name == name))
        is not None
    ):
        raise Invalid(f"{provider.slug}/{name} is in the catalogue already.", field="name")
    count = await session.scalar(select(func.count()).select_from(LlmModel).where(LlmModel.provider_id == provider.id))
    if (count or 0) >= MAX_MODELS_PER_PROVIDER:
        raise Invalid(f"A provider has at most {MAX_MODELS_PER_PROVIDER} models in the catalogue.")
    session.add(model)
    await session.flush()
    await record_in_workspace(session, "llm.model_added", actor, _model_details(provider, model))
    return model


async def update_model(
    session: AsyncSession, *, actor: Actor, model_id: uuid.UUID | str, values: ModelInput
) -> LlmModel:
    """Change a model's label, prices or context window (its name stays: agents name it)."""
    model, provider = await _model(session, model_id)
    before = _model_details(provider, model)
    _apply_model_values(model, values)
    after = _model_details(provider, model)
    changes = {key: {"from": before[key], "to": after[key]} for key in after if before[key] != after[key]}
    if not changes:
        return model
    model.source = "custom"
    model.updated_at = datetime.now(UTC)
    await session.flush()
    await record_in_workspace(session, "llm.model_changed", actor, {"model": after["model"], **changes})
    return model


async def delete_model(session: AsyncSession, *, actor: Actor, model_id: uuid.UUID | str) -> LlmModel:
    model, provider = await _model(session, model_id)
    await session.delete(model)
    await session.flush()
    await record_in_workspace(session, "llm.model_removed", actor, {"model": f"{provider.slug}/{model.name}"})
    return model


async def find_model(session: AsyncSession, model_id: uuid.UUID | str) -> LlmModel | None:
    try:
        return await session.get(LlmModel, as_uuid(model_id, NotFound()))
    except NotFound:
        return None


async def _model(session: AsyncSession, model_id: uuid.UUID | str) -> tuple[LlmModel, LlmProvider]:
    missing = NotFound("That model is not in the catalogue.")
    row = (
        await session.execute(
            select(LlmModel, LlmProvider)
            .join(LlmProvider, LlmProvider.id == LlmModel.provider_id)
            .where(LlmModel.id == as_uuid(model_id, missing))
        )
    ).first()
    if row is None:
        raise missing
    return row[0], row[1]


def _apply_model_values(model: LlmModel, values: ModelInput) -> None:
    errors: dict[str, str] = {}
    label = " ".join(values.label.split())
    if problem := single_line_problem(values.label, "A label"):
        errors["label"] = problem
    elif len(label) > 120:
        errors["label"] = "A label is at most 120 characters."
    prices: dict[str, Decimal | None] = {}
    for field in ("input_price", "output_price", "cache_read_price", "cache_write_price"):
        try:
            prices[field] = parse_price(getattr(values, field))
        except ValueError as problem:
            errors[field] = str(problem)
    window: int | None = None
    raw_window = values.context_window.strip().replace(",", "").replace("_", "")
    if raw_window:
        if not raw_window.isdigit() or not 1 <= int(raw_window) <= 100_000_000:
            errors["context_window"] = "The context window is a number of tokens, like 200000."
        else:
            window = int(raw_window)
    if errors:
        raise Invalid(errors)
    model.label = label
    model.input_price = prices["input_price"]
    model.output_price = prices["output_price"]
    model.cache_read_price = prices["cache_read_price"]
    model.cache_write_price = prices["cache_write_price"]
    model.context_window = window


def parse_price(value: str) -> Decimal | None:
    """A price in USD per million tokens ("3", "0.075", "$1.25"); "" is unknown. ValueError says what is wrong."""
    text = value.strip().removeprefix("$").strip().replace(",", "")
    if not text:
        return None
    try:
        price = Decimal(text)
    except InvalidOperation:
        raise ValueError("Enter a price in dollars per million tokens, like 3 or 0.075.") from None
    if not price.is_finite() or price < 0 or price > MAX_PRICE:
        raise ValueError(f"A price is between $0 and ${MAX_PRICE:,} per million tokens.")
    if price != price.quantize(Decimal("0.000001")):
        raise ValueError("A price has at most six decimals.")
    return price


def _model_details(provider: LlmProvider, model: LlmModel) -> dict[str, str]:
    def money(value: Decimal | None) -> str:
        return "unknown" if value is None else f"${value.normalize():f}"

    return {
        "model": f"{provider.slug}/{model.name}",
        "label": model.label,
        "input": money(model.input_price),
        "output": money(model.output_price),
        "cache_read": money(model.cache_read_price),
        "cache_write": money(model.cache_write_price),
        "context_window": str(model.context_window or "unknown"),
    }
