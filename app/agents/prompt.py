"""The system prompt of an agent, assembled in one place: the edit page previews it, and the pipeline engine
sends it to the agent runtime as the step's system prompt.

Order and headings are ours: who the agent is (name, role, then its Identity section), Personality, Working
procedures, Decision framework, then the platform: the tools it has and how a step ends (``complete`` or
``fail``). Empty sections are left out. With a ``step``, the platform section also says which pipeline step
this is and which outputs it must fill, in the machine-readable lines the runtime and the demo model read
(``Outputs: a, b``, ``JSON array outputs: b`` and ``Routing values for a: X, Y``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from app.agents.tools import TOOLS, ordered


class Persona(Protocol):
    """What the prompt is made from: a saved :class:`~app.agents.models.Agent` or an unsaved draft."""

    @property
    def name(self) -> str: ...
    @property
    def role(self) -> str: ...
    @property
    def identity(self) -> str: ...
    @property
    def personality(self) -> str: ...
    @property
    def procedures(self) -> str: ...
    @property
    def decision_framework(self) -> str: ...
    @property
    def tools(self) -> Sequence[str]: ...


@dataclass(frozen=True)
class StepBrief:
    """The pipeline step the prompt is for (the pipeline engine fills it in)."""

    pipeline: str
    step: str
    outputs: tuple[str, ...] = ()
    # output name -> the values the step's routing accepts for it
    routing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Outputs a later step loops over: each must be a JSON array.
    json_arrays: tuple[str, ...] = ()


def _section(title: str, body: str) -> str | None:
    text = body.strip()
    return f"## {title}\n\n{text}" if text else None


def _who(agent: Persona) -> str:
    name = agent.name.strip() or "an agent"
    role = agent.role.strip()
    opening = f"You are {name} ({role})." if role else f"You are {name}."
    team = "You are one of the AI agents of a team on Marid, working alongside the people of the workspace."
    return "\n\n".join(part for part in (opening + " " + team, agent.identity.strip()) if part)


def _platform(agent: Persona, step: StepBrief | None) -> str:
    tools = ordered(list(agent.tools))
    lines = ["## Working on Marid", ""]
    if tools:
        lines.append("You work in a sandbox with a workspace folder of files. Your tools:")
        lines += [f"- `{name}`: {TOOLS[name].summary}" for name in tools]
    else:
        lines.append("You have no tools besides finishing the step: answer from what you are given.")
    lines += [
        "",
        "Each piece of work you get is a step. A step ends only when you call one of these:",
        "- `complete`: the work is done. Give a value for every output the step asks for, and a short summary "
        "of what you did.",
        "- `fail`: the work cannot be done. Say why, precisely enough for a person to act on it.",
        "",
        "Do not stop without calling one of them. Never invent results you did not produce, and never ask for "
        "secrets or keys: the platform gives you what you are allowed to use.",
    ]
    if step is not None:
        lines += ["", f"This is step {step.step} of the pipeline “{step.pipeline}”."]
        if step.outputs:
            lines.append(f"Outputs: {', '.join(step.outputs)}")
        if step.json_arrays:
            lines.append(f"JSON array outputs: {', '.join(step.json_arrays)}")
        lines += [f"Routing values for {name}: {', '.join(values)}" for name, values in step.routing.items() if values]
    return "\n".join(lines)


def assemble_system_prompt(agent: Persona, *, step: StepBrief | None = None) -> str:
    """The agent's whole system prompt (plain Markdown text; the caller escapes it wherever it is shown)."""
    parts = [
        _section("Identity", _who(agent)),
        _section("Personality", agent.personality),
        _section("Working procedures", agent.procedures),
        _section("Decision framework", agent.decision_framework),
        _platform(agent, step),
    ]
    return "\n\n".join(part for part in parts if part) + "\n"
