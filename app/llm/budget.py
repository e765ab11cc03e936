"""The workspace's LLM budgets: a monthly cap, and a cap for each run or swarm (every call of its steps). Read,
parse as typed, set (with their audit entries). What a call may spend is decided by the gateway
(:mod:`app.llm.spend`); a step's token carries the run cap in force when the step starts
(:func:`app.execution.step.execute_agent_step`)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.errors import Invalid
from app.llm.models import LlmBudget

MAX_MONTHLY_CAP = Decimal("10000000")
MAX_RUN_CAP = Decimal("1000000")


@dataclass(frozen=True)
class Caps:
    """The workspace's caps in USD (None: no cap): per calendar month (UTC), and per run or swarm."""

    monthly: Decimal | None = None
    run: Decimal | None = None


async def _row(session: AsyncSession, *, lock: bool = False) -> LlmBudget | None:
    return await session.get(LlmBudget, 1, with_for_update=lock)


async def caps(session: AsyncSession) -> Caps:
    """Both caps, read together."""
    row = (await session.execute(select(LlmBudget.monthly_cap, LlmBudget.run_cap).where(LlmBudget.id == 1))).first()
    return Caps() if row is None else Caps(monthly=row[0], run=row[1])


def parse_cap(value: str, field: str = "monthly_cap") -> Decimal | None:
    """A cap as typed ("250", "$1,000.50"); "" for none. ``field`` is ``monthly_cap`` or ``run_cap``. Invalid says
    what is wrong, on that field."""
    text = value.strip().removeprefix("$").strip().replace(",", "")
    if not text:
        return None
    try:
        cap = Decimal(text)
    except InvalidOperation:
        raise Invalid("Enter the cap in dollars, like 250 or 99.50, or leave it empty for none.", field=field) from None
    largest, name = (MAX_RUN_CAP, "A run's cap") if field == "run_cap" else (MAX_MONTHLY_CAP, "A monthly cap")
    if not cap.is_finite() or cap < 0 or cap > largest:
        raise Invalid(f"{name} is between $0 and ${largest:,}.", field=field)
    if cap != cap.quantize(Decimal("0.01")):
        raise Invalid("A cap is in whole cents.", field=field)
    return cap


async def set_monthly_cap(session: AsyncSession, *, actor: Actor, cap: Decimal | None) -> bool:
    """Set (or, with None, remove) the monthly cap; False when it was already so."""
    return await _set(session, actor, "monthly", cap)


async def set_run_cap(session: AsyncSession, *, actor: Actor, cap: Decimal | None) -> bool:
    """Set (or, with None, remove) each run's cap; False when it was already so. Steps that start afterwards carry
    it: a run already going keeps the cap of each step's start."""
    return await _set(session, actor, "run", cap)


async def _set(session: AsyncSession, actor: Actor, which: str, cap: Decimal | None) -> bool:
    budget = await _row(session, lock=True)
    if budget is None:
        if cap is None:
            return False  # no row is no cap: nothing to write
        budget = LlmBudget(id=1, monthly_cap=None, run_cap=None)
        session.add(budget)
    before = budget.run_cap if which == "run" else budget.monthly_cap
    if before == cap:
        return False
    if which == "run":
        budget.run_cap = cap
    else:
        budget.monthly_cap = cap
    budget.updated_at = datetime.now(UTC)
    await session.flush()

    def shown(value: Decimal | None) -> str:
        return "no cap" if value is None else f"${value:,.2f}"

    details = {"budget": which, "cap": shown(cap), "from": shown(before), "to": shown(cap)}
    await record_in_workspace(session, "llm.budget_changed", actor, details)
    return True
