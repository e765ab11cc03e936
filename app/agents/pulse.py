"""An agent's pulse: when it wakes by itself to look for work, and the guardrails on waking it from outside.

Stored now, used by the pulse scheduler later. The defaults are those every starter agent gets: off, every 30
minutes, quiet at night (23:00-07:00 UTC), and the wake guardrails below.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from typing import Any

from app.errors import Invalid

MAX_BLACKOUTS = 10
BLACKOUT_LABEL_MAX = 40
_TIME = re.compile(r"([01]\d|2[0-3]):([0-5]\d)")
_BLACKOUT_LINE = re.compile(r"\s*(\d{1,2}:\d{2})\s*[-–]\s*(\d{1,2}:\d{2})\s*(.*?)\s*")


@dataclass(frozen=True)
class Blackout:
    """A daily window (UTC) in which the agent is never woken by its pulse; it may cross midnight."""

    start: str  # "23:00"
    end: str  # "07:00"
    label: str = ""

    def as_json(self) -> dict[str, str]:
        return {"start": self.start, "end": self.end, "label": self.label}

    @property
    def line(self) -> str:
        return f"{self.start}-{self.end} {self.label}".rstrip()


# name -> (label for forms and errors, lowest, highest)
LIMITS: dict[str, tuple[str, int, int]] = {
    "interval_minutes": ("The pulse interval", 5, 24 * 60),
    "offset_minutes": ("The pulse offset", 0, 24 * 60 - 1),
    "max_consecutive_skips": ("Consecutive skips before backing off", 1, 100),
    "max_concurrent": ("Pulse sessions at once", 1, 10),
    "wake_cooldown_seconds": ("The wake cooldown", 0, 24 * 3600),
    "wake_max_per_day": ("Wakes per day", 0, 1000),
    "wake_max_per_pair_per_day": ("Wakes per day from one agent", 0, 1000),
    "wake_max_session_minutes_per_day": ("Session minutes per day", 0, 24 * 60),
}


@dataclass(frozen=True)
class PulseSettings:
    enabled: bool = False
    interval_minutes: int = 30
    # Shifts this agent's pulses so that a team does not wake all at once.
    offset_minutes: int = 0
    blackouts: tuple[Blackout, ...] = field(default=(Blackout("23:00", "07:00", "Night"),))
    # After this many pulses in a row that found nothing to do, the scheduler backs off.
    max_consecutive_skips: int = 5
    max_concurrent: int = 2
    # Wake guardrails: how often others (people, agents) may wake this agent outside its pulse.
    wake_cooldown_seconds: int = 300
    wake_max_per_day: int = 12
    wake_max_per_pair_per_day: int = 5
    wake_max_session_minutes_per_day: int = 120

    def check(self) -> PulseSettings:
        """Itself, if every number is in range and the blackouts are well-formed; else :class:`Invalid`."""
        problems: dict[str, str] = {}
        for name, (label, low, high) in LIMITS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                problems[f"pulse_{name}"] = f"{label} must be a whole number from {low} to {high}."
        if self.offset_minutes >= self.interval_minutes and "pulse_offset_minutes" not in problems:
            problems["pulse_offset_minutes"] = "The pulse offset must be shorter than the interval."
        try:
            check_blackouts(self.blackouts)
        except Invalid as invalid:
            problems.update(invalid.errors)
        if problems:
            raise Invalid(problems)
        return self

    def as_columns(self) -> dict[str, Any]:
        """The agent's columns (``pulse_*`` and ``wake_*``) holding these settings."""
        values: dict[str, Any] = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "blackouts":
                value = [blackout.as_json() for blackout in value]
            column = item.name if item.name.startswith("wake_") else f"pulse_{item.name}"
            values[column] = value
        return values

    @classmethod
    def from_columns(cls, row: Any) -> PulseSettings:
        values: dict[str, Any] = {}
        for item in fields(cls):
            column = item.name if item.name.startswith("wake_") else f"pulse_{item.name}"
            values[item.name] = getattr(row, column)
        values["blackouts"] = tuple(
            Blackout(str(b.get("start", "")), str(b.get("end", "")), str(b.get("label", "")))
            for b in values["blackouts"] or []
            if isinstance(b, dict)
        )
        return cls(**values)

    def with_changes(self, **changes: Any) -> PulseSettings:
        return replace(self, **changes)

    @property
    def blackout_text(self) -> str:
        return "\n".join(blackout.line for blackout in self.blackouts)


DEFAULT_PULSE = PulseSettings()


def check_blackouts(blackouts: tuple[Blackout, ...]) -> None:
    if len(blackouts) > MAX_BLACKOUTS:
        raise Invalid(f"At most {MAX_BLACKOUTS} quiet windows.", field="pulse_blackouts")
    for blackout in blackouts:
        for moment in (blackout.start, blackout.end):
            if not _TIME.fullmatch(moment):
                raise Invalid(f"“{moment}” is not a time of day (HH:MM, 00:00 to 23:59).", field="pulse_blackouts")
        if blackout.start == blackout.end:
            raise Invalid("A quiet window must not start and end at the same time.", field="pulse_blackouts")
        if len(blackout.label) > BLACKOUT_LABEL_MAX or any(ord(c) < 32 for c in blackout.label):
            raise Invalid(
                f"A quiet window's label is one line of at most {BLACKOUT_LABEL_MAX} characters.",
                field="pulse_blackouts",
            )


def parse_blackouts(text: str) -> tuple[Blackout, ...]:
    """Quiet windows typed one per line as ``23:00-07:00 Night``; blank lines are ignored."""
    found: list[Blackout] = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        match = _BLACKOUT_LINE.fullmatch(line)
        if match is None:
            raise Invalid(
                f"Line {number}: write a quiet window as “23:00-07:00 Night” (start-end, UTC, then a label).",
                field="pulse_blackouts",
            )
        start, end, label = match.groups()
        found.append(Blackout(start.zfill(5), end.zfill(5), " ".join(label.split())))
    result = tuple(found)
    check_blackouts(result)
    return result


def parse_whole_number(value: str, name: str) -> int:
    label, low, high = LIMITS[name]
    text = value.strip()
    if not re.fullmatch(r"\d{1,7}", text):
        raise Invalid(f"{label} must be a whole number from {low} to {high}.", field=f"pulse_{name}")
    return int(text)


def pulse_from_form(values: dict[str, str], base: PulseSettings = DEFAULT_PULSE) -> PulseSettings:
    """Settings from the agent form's ``pulse_*`` fields (a missing field keeps ``base``'s value)."""
    changes: dict[str, Any] = {}
    problems: dict[str, str] = {}
    if "pulse_form" in values:  # the form was shown: an unticked box is not sent at all
        changes["enabled"] = values.get("pulse_enabled", "") in {"on", "true", "1", "yes"}
    for name in LIMITS:
        key = f"pulse_{name}"
        if key in values:
            try:
                changes[name] = parse_whole_number(values[key], name)
            except Invalid as invalid:
                problems.update(invalid.errors)
    if "pulse_blackouts" in values:
        try:
            changes["blackouts"] = parse_blackouts(values["pulse_blackouts"])
        except Invalid as invalid:
            problems.update(invalid.errors)
    if problems:
        raise Invalid(problems)
    return replace(base, **changes).check()
