"""The onboarding wizard as data: later capabilities append steps (LLM key, starter agents) here."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    # Where the step lives; ``{slug}`` is filled once the workspace exists.
    path: str


STEPS: list[Step] = [
    Step("workspace", "Create your workspace", "/onboarding"),
    Step("invite", "Invite your team", "/w/{slug}/onboarding/invite"),
    Step("llm", "Connect an LLM", "/w/{slug}/onboarding/llm"),
    Step("agents", "Add your team of agents", "/w/{slug}/onboarding/agents"),
    Step("first_run", "Watch a first run", "/w/{slug}/onboarding/run"),
]


def next_step(current: str, slug: str) -> str:
    """The path after step ``current``; the workspace dashboard after the last one."""
    keys = [step.key for step in STEPS]
    index = keys.index(current)
    if index + 1 < len(STEPS):
        return STEPS[index + 1].path.format(slug=slug)
    return f"/w/{slug}"
