"""An agent draft from the fields of the agent form (pages only; the JSON API has its own schema)."""

from __future__ import annotations

from app.agents.draft import SECTIONS, AgentDraft
from app.agents.pulse import LIMITS, PulseSettings, pulse_from_form
from app.errors import Invalid

# Longer than any section may be: a longer field is dropped by the form reader and reported as too long.
FORM_MAX_CHARS = 64_000
PROFILE_FIELDS = ("name", "role", "emoji", "model")


def form_values_of(draft: AgentDraft, agent_id: str = "") -> dict[str, str]:
    """The form's fields for ``draft`` (what the edit page starts with)."""
    values = {"id": agent_id, "model": draft.model or ""}
    for key in ("name", "role", "emoji"):
        values[key] = getattr(draft, key)
    for key, _, _ in SECTIONS:
        values[key] = getattr(draft, key)
    values.update(pulse_values(draft.pulse))
    return values


def pulse_values(pulse: PulseSettings) -> dict[str, str]:
    values = {f"pulse_{name}": str(getattr(pulse, name)) for name in LIMITS}
    values["pulse_blackouts"] = pulse.blackout_text
    values["pulse_enabled"] = "on" if pulse.enabled else ""
    return values


def draft_from_form(values: dict[str, str], tools: list[str], base: AgentDraft, *, strict: bool = True) -> AgentDraft:
    """The draft the form describes, starting from ``base`` for what it does not send.

    ``strict``: a persona field missing from the form (the reader drops what is far too long) and unreadable
    pulse fields are refused; without it (the live preview) they keep ``base``'s values.
    """
    problems: dict[str, str] = {}
    changes: dict[str, object] = {key: values[key] for key in PROFILE_FIELDS if key in values}
    for key, label, limit in SECTIONS:
        if key in values:
            changes[key] = values[key]
        elif strict:
            problems[key] = f"{label} is missing, or far longer than its limit of {limit:,} characters."
    if "tools_form" in values:  # the form was shown: no ticked box means no tools
        changes["tools"] = tuple(tools)
    try:
        changes["pulse"] = pulse_from_form(values, base.pulse)
    except Invalid as invalid:
        if strict:
            problems.update(invalid.errors)
    if problems:
        raise Invalid(problems)
    return base.with_changes(**changes)
