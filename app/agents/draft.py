"""What an agent is made of before it is saved (a form, an API body, a roster entry, a clone), and the rules it
must pass: :func:`check_draft` refuses anything wrong with an :class:`~app.errors.Invalid` naming each field,
the same way for pages and the JSON API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

from app.agents.model_hook import model_format_problem
from app.agents.pulse import DEFAULT_PULSE, PulseSettings
from app.agents.tools import DEFAULT_TOOLS, TOOLS, ordered
from app.errors import Invalid
from app.security.single_line import single_line_problem

ID_MAX = 48
ID_PATTERN = re.compile(r"[a-z](?:[a-z0-9-]{0,46}[a-z0-9])?")
# Words the agents' pages use after /agents/.
RESERVED_IDS = frozenset({"new", "roster", "preview", "edit"})
NAME_MAX = 80
ROLE_MAX = 120
EMOJI_MAX = 16
DEFAULT_EMOJI = "🤖"

# The persona's sections: (field, label, limit in characters), in the order the system prompt puts them.
SECTIONS: tuple[tuple[str, str, int], ...] = (
    ("identity", "Identity", 8_000),
    ("personality", "Personality", 16_000),
    ("procedures", "Working procedures", 16_000),
    ("decision_framework", "Decision framework", 12_000),
)
SECTION_NAMES = tuple(name for name, _, _ in SECTIONS)
PERSONA_MAX = 32_000  # characters, all four sections together


@dataclass(frozen=True)
class AgentDraft:
    name: str
    role: str = ""
    emoji: str = DEFAULT_EMOJI
    identity: str = ""
    personality: str = ""
    procedures: str = ""
    decision_framework: str = ""
    # "provider/model"; None: the workspace's default model.
    model: str | None = None
    tools: tuple[str, ...] = DEFAULT_TOOLS
    pulse: PulseSettings = field(default=DEFAULT_PULSE)

    def with_changes(self, **changes: Any) -> AgentDraft:
        return replace(self, **changes)

    @property
    def persona_length(self) -> int:
        return sum(len(getattr(self, name)) for name in SECTION_NAMES)


def id_problem(agent_id: str) -> str | None:
    """Why ``agent_id`` cannot name an agent; None if it can."""
    if not ID_PATTERN.fullmatch(agent_id):
        return (
            f"An agent's id is 1-{ID_MAX} lowercase letters, digits and hyphens, starting with a letter and not "
            "ending with a hyphen, e.g. “software-engineer”."
        )
    if agent_id in RESERVED_IDS:
        return f"“{agent_id}” is reserved; choose another id."
    return None


def clean_id(agent_id: str) -> str:
    clean = agent_id.strip().lower()
    if problem := id_problem(clean):
        raise Invalid(problem, field="id")
    return clean


def suggest_id(name: str) -> str:
    """An id made from a name: ``Site reliability engineer`` → ``site-reliability-engineer``."""
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    slug = re.sub(r"^[^a-z]+", "", slug)[:ID_MAX].strip("-")
    return slug or "agent"


def _one_line(value: str, label: str, key: str, limit: int, *, required: bool) -> str:
    if problem := single_line_problem(value, label):
        raise Invalid(problem, field=key)
    clean = " ".join(value.split())
    if required and not clean:
        raise Invalid(f"{label} is required.", field=key)
    if len(clean) > limit:
        raise Invalid(f"{label} is at most {limit} characters.", field=key)
    return clean


def clean_emoji(value: str) -> str:
    clean = value.strip()
    if not clean:
        return DEFAULT_EMOJI
    # Emoji are outside ASCII (keycaps aside, which nobody picks for an agent); a few code points make one
    # (skin tones, joiners, variation selectors).
    if len(clean) > EMOJI_MAX or any(ord(char) < 128 or char.isspace() for char in clean):
        raise Invalid("Choose one emoji, e.g. 🛠️ (or leave it empty for 🤖).", field="emoji")
    if single_line_problem(clean, "The emoji"):
        raise Invalid("Choose one emoji, e.g. 🛠️ (or leave it empty for 🤖).", field="emoji")
    return clean


def clean_section(value: str, label: str, key: str, limit: int) -> str:
    # Markdown: keep line breaks and indentation; normalise line endings and trim what surrounds the text.
    text = value.replace("\r\n", "\n").replace("\r", "\n").strip("\n").rstrip()
    if len(text) > limit:
        raise Invalid(f"{label} is {len(text):,} characters; the limit is {limit:,}. Shorten it.", field=key)
    if any(ord(char) < 32 and char not in "\n\t" for char in text):
        raise Invalid(f"{label} contains control characters; paste it as plain text.", field=key)
    return text


def clean_model(value: str | None) -> str | None:
    clean = (value or "").strip()
    if not clean:
        return None
    if problem := model_format_problem(clean):
        raise Invalid(problem, field="model")
    return clean


def clean_tools(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    unknown = sorted({name for name in names if name not in TOOLS})
    if unknown:
        known = ", ".join(TOOLS)
        raise Invalid(
            f"Unknown tool{'s' if len(unknown) > 1 else ''}: {', '.join(unknown)}. Known: {known}.", field="tools"
        )
    return tuple(ordered(list(names)))


def check_draft(draft: AgentDraft) -> AgentDraft:
    """The draft cleaned (spaces, line endings, tool order), or :class:`Invalid` with every problem found."""
    problems: dict[str, str] = {}
    cleaned: dict[str, Any] = {}

    def attempt(key: str, clean: Any) -> None:
        try:
            cleaned[key] = clean()
        except Invalid as invalid:
            problems.update(invalid.errors)

    attempt("name", lambda: _one_line(draft.name, "The name", "name", NAME_MAX, required=True))
    attempt("role", lambda: _one_line(draft.role, "The role", "role", ROLE_MAX, required=False))
    attempt("emoji", lambda: clean_emoji(draft.emoji))
    for key, label, limit in SECTIONS:
        attempt(key, lambda key=key, label=label, limit=limit: clean_section(getattr(draft, key), label, key, limit))
    attempt("model", lambda: clean_model(draft.model))
    attempt("tools", lambda: clean_tools(draft.tools))
    attempt("pulse", lambda: draft.pulse.check())
    if not any(key in problems for key in SECTION_NAMES):
        total = sum(len(cleaned[key]) for key in SECTION_NAMES)
        if total > PERSONA_MAX:
            problems["persona"] = (
                f"The persona is {total:,} characters in all; the limit is {PERSONA_MAX:,}. Shorten a section."
            )
    if problems:
        raise Invalid(problems)
    return replace(draft, **cleaned)
