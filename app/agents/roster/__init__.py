"""The starter roster: agents written for Marid, one Markdown file each in this folder.

A file is YAML front matter (``id``, ``name``, ``role``, ``emoji``, ``tools``, ``summary``) and then the persona,
one ``# Identity`` / ``# Personality`` / ``# Working procedures`` / ``# Decision framework`` heading per
section. The ids are the ones the starter pipelines (``app/pipelines/starters``) name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import yaml

from app.agents.draft import SECTIONS, AgentDraft, check_draft, id_problem

ROSTER_DIR = Path(__file__).resolve().parent
_FRONT_MATTER = re.compile(r"\A---\n(.*?)\n---\n(.*)\Z", re.DOTALL)
_HEADINGS = {label.lower(): key for key, label, _ in SECTIONS}
_HEADING = re.compile(r"^# (.+?)\s*$", re.MULTILINE)
# A line that starts a block of its own: a list item, a heading, a quote, a fence, a table row.
_BLOCK_START = re.compile(r"\s*(?:[-*+] |\d+[.)] |#|>|```|\|)")


@dataclass(frozen=True)
class Starter:
    id: str
    summary: str
    draft: AgentDraft

    @property
    def name(self) -> str:
        return self.draft.name

    @property
    def role(self) -> str:
        return self.draft.role

    @property
    def emoji(self) -> str:
        return self.draft.emoji


def unwrap(markdown: str) -> str:
    """Markdown with its hard line wraps joined: the files wrap at 110 columns to be read as source, but a persona
    reads better unwrapped in the editor and the prompt. Paragraphs and list items each become one line."""
    lines: list[str] = []
    fenced = False
    for line in markdown.split("\n"):
        if line.lstrip().startswith("```"):
            fenced = not fenced
            lines.append(line)
        elif fenced or not line.strip() or not lines or not lines[-1].strip() or _BLOCK_START.match(line):
            lines.append(line)
        else:
            lines[-1] = f"{lines[-1].rstrip()} {line.strip()}"
    return "\n".join(lines)


def parse_starter(text: str, source: str = "<roster>") -> Starter:
    """One roster file; raises ValueError naming ``source`` when it is malformed."""
    match = _FRONT_MATTER.match(text.replace("\r\n", "\n"))
    if match is None:
        raise ValueError(f"{source}: no front matter")
    meta = yaml.safe_load(match.group(1))
    if not isinstance(meta, dict):
        raise ValueError(f"{source}: the front matter is not a mapping")
    sections: dict[str, str] = {}
    body = match.group(2)
    headings = list(_HEADING.finditer(body))
    for index, heading in enumerate(headings):
        key = _HEADINGS.get(heading.group(1).lower())
        if key is None:
            raise ValueError(f"{source}: unknown section “{heading.group(1)}”")
        end = headings[index + 1].start() if index + 1 < len(headings) else len(body)
        sections[key] = unwrap(body[heading.end() : end].strip("\n"))
    agent_id = str(meta.get("id", ""))
    if problem := id_problem(agent_id):
        raise ValueError(f"{source}: {problem}")
    draft = AgentDraft(
        name=str(meta.get("name", "")),
        role=str(meta.get("role", "")),
        emoji=str(meta.get("emoji", "")),
        tools=tuple(str(tool) for tool in meta.get("tools", [])),
        identity=sections.get("identity", ""),
        personality=sections.get("personality", ""),
        procedures=sections.get("procedures", ""),
        decision_framework=sections.get("decision_framework", ""),
    )
    return Starter(id=agent_id, summary=" ".join(str(meta.get("summary", "")).split()), draft=check_draft(draft))


@cache
def starters() -> tuple[Starter, ...]:
    """Every starter, in the order of their files' ``order`` prefix (``10-product-owner.md``)."""
    found = [parse_starter(path.read_text(encoding="utf-8"), path.name) for path in sorted(ROSTER_DIR.glob("*.md"))]
    ids = [starter.id for starter in found]
    if len(set(ids)) != len(ids):
        raise ValueError(f"the roster names an agent twice: {ids}")
    return tuple(found)


def starter(agent_id: str) -> Starter | None:
    return next((item for item in starters() if item.id == agent_id), None)
