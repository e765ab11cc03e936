"""The workspace's monthly LLM budget: read, parse as typed, set (with its audit entry). What a call may spend is
decided by the gateway (:mod:`app.llm.spend`)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid
from app.llm.models import LlmBudget

MAX_MONTHLY_CAP = Decimal("10000000")


async def monthly_cap(session: AsyncSession) -> Decimal | None:
    """The workspace's monthly cap in USD (None: no cap)."""
    cap: Decimal | None = await session.scalar(select(LlmBudget.monthly_cap).where(LlmBudget.id == 1))
    return cap


def parse_cap(value: str) -> Decimal | None:
    """A monthly cap as typed ("250", "$1,000.50"); "" for none. Invalid says what is wrong."""
    text = value.strip().removeprefix("$").strip().replace(",", "")
    if not text:
        return None
    try:
        cap = Decimal(text)
    except InvalidOperation:
        raise Invalid(
            "Enter the cap in dollars, like 250 or 99.50, or leave it empty for none.", field="monthly_cap"
        ) from None
    if not cap.is_finite() or cap < 0 or cap > MAX_MONTHLY_CAP:
        raise Invalid(f"A monthly cap is between $0 and ${MAX_MONTHLY_CAP:,}.", field="monthly_cap")
    if cap != cap.quantize(Decimal("0.01")):
        raise Invalid("A cap is in whole cents.", field="monthly_cap")
    return cap


async def set_monthly_cap(session: AsyncSession, *, actor: Actor, cap: Decimal | None) -> bool:
    """Set (or, with None, remove) the monthly cap; False when it was already so."""
    budget = await session.get(LlmBudget, 1, with_for_update=True)
    if budget is None:
        budget = LlmBudget(id=1, monthly_cap=None)
        session.add(budget)
    if budget.monthly_cap == cap:
        return False
    before = budget.monthly_cap
    budget.monthly_cap = cap
    budget.updated_at = datetime.now(UTC)
    await session.flush()

    def shown(value: Decimal | None) -> str:
        return "no cap" if value is None else f"${value:,.2f}"

    await record_in_workspace(
        session, "llm.budget_changed", actor, {"cap": shown(cap), "from": shown(before), "to": shown(cap)}
    )
    return True
