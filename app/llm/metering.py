"""What one call through the gateway used and cost: counted from the provider's answer as it streams by.

The record of a call (:class:`CallRecord`) is what ``llm_calls`` stores, what the live event shows (without
anything of the conversation) and what the spend counters add up.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from app.llm.catalogue import Prices, cost_of


def _int(value: Any) -> int:
    return value if isinstance(value, int) and value > 0 else 0


@dataclass
class Meter:
    """Counts tokens, tool calls and the stop reason of one answer, and when its first token came."""

    started: float = field(default_factory=time.perf_counter)
    first_token: float | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    usage_reported: bool = False
    stop_reason: str | None = None
    tool_call_ids: set[tuple[int, int]] = field(default_factory=set)

    def token(self) -> None:
        if self.first_token is None:
            self.first_token = time.perf_counter()

    def openai_usage(self, usage: Any) -> None:
        """OpenAI's usage: ``prompt_tokens`` includes the cached part (and, from Anthropic-backed endpoints,
        the part written to the cache)."""
        if not isinstance(usage, dict):
            return
        prompt = _int(usage.get("prompt_tokens"))
        details = usage.get("prompt_tokens_details")
        details = details if isinstance(details, dict) else {}
        cached = _int(details.get("cached_tokens")) or _int(usage.get("cache_read_input_tokens"))
        written = (
            _int(details.get("cache_write_tokens"))
            or _int(details.get("cache_creation_tokens"))
            or _int(usage.get("cache_creation_input_tokens"))
        )
        self.cache_read_tokens = cached
        self.cache_write_tokens = written
        self.input_tokens = max(prompt - cached - written, 0)
        self.output_tokens = _int(usage.get("completion_tokens"))
        self.usage_reported = True

    def openai_choice(self, choice: Any, delta_key: str = "delta") -> None:
        """One choice of a chunk (``delta``) or of a whole completion (``message``)."""
        if not isinstance(choice, dict):
            return
        delta = choice.get(delta_key)
        if isinstance(delta, dict):
            if delta.get("content") or delta.get("reasoning_content") or delta.get("refusal"):
                self.token()
            calls = delta.get("tool_calls")
            if isinstance(calls, list):
                self.token()
                raw_index = choice.get("index")
                index = raw_index if isinstance(raw_index, int) else 0
                for position, call in enumerate(calls):
                    if isinstance(call, dict) and call.get("id"):
                        raw_call_index = call.get("index")
                        call_index = raw_call_index if isinstance(raw_call_index, int) else position
                        self.tool_call_ids.add((index, call_index))
        reason = choice.get("finish_reason")
        if isinstance(reason, str) and reason:
            self.stop_reason = reason[:32]

    def anthropic_usage(self, usage: Any) -> None:
        """Anthropic's usage: ``input_tokens`` already excludes what was read from or written to the cache; the
        final event repeats the totals, so each count keeps the largest value seen."""
        if usage is None:
            return
        for name, attribute in (
            ("input_tokens", "input_tokens"),
            ("output_tokens", "output_tokens"),
            ("cache_read_tokens", "cache_read_input_tokens"),
            ("cache_write_tokens", "cache_creation_input_tokens"),
        ):
            value = _int(getattr(usage, attribute, None))
            if value > getattr(self, name):
                setattr(self, name, value)
        self.usage_reported = True

    @property
    def tool_calls(self) -> int:
        return len(self.tool_call_ids)

    def first_token_ms(self) -> int | None:
        return None if self.first_token is None else round((self.first_token - self.started) * 1000)

    def total_ms(self) -> int:
        return round((time.perf_counter() - self.started) * 1000)


@dataclass
class CallRecord:
    """One row of ``llm_calls``, before it is written."""

    call_id: uuid.UUID
    at: datetime
    workspace_id: str
    token_id: uuid.UUID | None
    agent_id: str
    run_id: str | None
    step_id: str | None
    session_id: str | None
    model: str
    provider: str = ""
    provider_kind: str = ""
    stream: bool = False
    status: str = "ok"
    http_status: int = 200
    error: str = ""
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost: Decimal = Decimal(0)
    cost_approximate: bool = False
    first_token_ms: int | None = None
    total_ms: int = 0
    stop_reason: str | None = None
    tool_calls: int = 0

    def finish(self, meter: Meter, prices: Prices | None, *, failed: str | None = None, http_status: int = 200) -> None:
        """Fill in what the meter counted. A failed call costs nothing (its tokens are kept, if known)."""
        self.input_tokens = meter.input_tokens
        self.output_tokens = meter.output_tokens
        self.cache_read_tokens = meter.cache_read_tokens
        self.cache_write_tokens = meter.cache_write_tokens
        self.first_token_ms = meter.first_token_ms()
        self.total_ms = meter.total_ms()
        self.stop_reason = meter.stop_reason
        self.tool_calls = meter.tool_calls
        self.http_status = http_status
        if failed is not None:
            self.status, self.error = "error", failed[:1000]
            self.cost, self.cost_approximate = Decimal(0), False
            return
        cost = cost_of(
            prices,
            input_tokens=meter.input_tokens,
            output_tokens=meter.output_tokens,
            cache_read_tokens=meter.cache_read_tokens,
            cache_write_tokens=meter.cache_write_tokens,
        )
        self.cost = cost.usd
        # No usage from the provider: the tokens (and so the cost) are unknown, not zero.
        self.cost_approximate = cost.approximate or not meter.usage_reported

    def refuse(self, status: int, message: str, meter: Meter) -> None:
        """A call the gateway refused before any provider saw it (unknown model, budget spent)."""
        self.status, self.http_status, self.error = "refused", status, message[:1000]
        self.total_ms = meter.total_ms()

    @property
    def nano_usd(self) -> int:
        """The cost in billionths of a dollar, for the spend counters (whole numbers add up exactly)."""
        return int(self.cost * 1_000_000_000)

    def row(self) -> dict[str, Any]:
        """The columns of ``llm_calls`` (a shallow copy: ``dataclasses.asdict`` deep-copies every value)."""
        values = dict(self.__dict__)
        del values["workspace_id"]
        return values

    def to_json(self) -> dict[str, Any]:
        values = dict(self.__dict__)
        for key in ("call_id", "token_id"):
            values[key] = None if values[key] is None else str(values[key])
        values["at"] = self.at.isoformat()
        values["cost"] = str(self.cost)
        return values

    @classmethod
    def from_json(cls, values: dict[str, Any]) -> CallRecord:
        values = dict(values)
        values["call_id"] = uuid.UUID(values["call_id"])
        values["token_id"] = None if values.get("token_id") is None else uuid.UUID(values["token_id"])
        values["at"] = datetime.fromisoformat(values["at"])
        values["cost"] = Decimal(values["cost"])
        return cls(**values)
