"""Single-line text: names of people, workspaces and API keys, and anything else that reaches a mail header, a
log line or an HTTP header.

Such a field refuses control characters outright, rather than quietly dropping them: a CR or LF could start a
new mail header (one such name once stopped all outgoing mail), a NUL cannot be stored, and the bidi controls
make a name read differently from what it is ("invoice\u202etxt.exe"). Every place that accepts such a field
calls :func:`single_line_problem` (or :func:`clean_single_line`), so the rule is the same on every form and in
the JSON API.
"""

from __future__ import annotations

import unicodedata

# Refused besides the general categories below: line and paragraph separators, and the bidi embeddings,
# overrides and isolates (the invisible left-to-right / right-to-left *marks* stay allowed: names in
# right-to-left scripts need them).
_REFUSED = frozenset("\u2028\u2029\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
# Cc: C0 controls (tab, CR, LF, NUL...), DEL and the C1 controls; Cs: lone surrogates (not text at all);
# Zl/Zp: line and paragraph separators.
_REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})


class SingleLineError(ValueError):
    """Why a single-line field was refused, as a sentence for the user."""


def control_characters(value: str) -> list[str]:
    """The refused characters in ``value`` as ``U+000A`` labels, in order, each once."""
    found: list[str] = []
    for char in value:
        if char in _REFUSED or unicodedata.category(char) in _REFUSED_CATEGORIES:
            label = f"U+{ord(char):04X}"
            if label not in found:
                found.append(label)
    return found


def single_line_problem(value: str, label: str) -> str | None:
    """Why ``value`` cannot be used as a single-line field called ``label`` ("The workspace name"); None if it can."""
    if control_characters(value):
        return f"{label} must be one line of plain text: no line breaks, tabs or other control characters."
    return None


def clean_single_line(value: str, label: str, *, max_length: int, required: bool = True) -> str:
    """``value`` with runs of spaces collapsed and the ends trimmed; raises :class:`SingleLineError` when it holds
    control characters, is empty (and ``required``) or is longer than ``max_length`` characters."""
    if problem := single_line_problem(value, label):
        raise SingleLineError(problem)
    clean = " ".join(value.split())
    if (required and not clean) or len(clean) > max_length:
        raise SingleLineError(f"{label} must be {1 if required else 0} to {max_length} characters.")
    return clean


def strip_control_characters(value: str) -> str:
    """``value`` with every refused character replaced by a space, collapsed: for text stored before this rule
    existed, where it is shown or mailed (never for new input, which is refused)."""
    cleaned = "".join(" " if control_characters(char) else char for char in value)
    return " ".join(cleaned.split())
