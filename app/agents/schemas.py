"""The JSON shapes of the agents API. Lengths are checked by the service (with the same messages as the
form), so the limits here only keep absurd bodies out."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.api.schemas import Body, page_of

_TEXT = 100_000
_LINE = 1_000


class BlackoutIn(Body):
    start: str = Field(max_length=_LINE, description="HH:MM, UTC.")
    end: str = Field(max_length=_LINE, description="HH:MM, UTC; before `start` for a window over midnight.")
    label: str = Field("", max_length=_LINE)


class PulseIn(Body):
    """Pulse settings to set; omitted fields keep their value (a new agent: the defaults)."""

    enabled: bool | None = None
    interval_minutes: int | None = Field(None, description="5-1440.")
    offset_minutes: int | None = Field(None, description="0-1439, shorter than the interval.")
    blackouts: list[BlackoutIn] | None = Field(None, max_length=100, description="Quiet windows; at most 10.")
    max_consecutive_skips: int | None = Field(None, description="1-100.")
    max_concurrent: int | None = Field(None, description="Pulse sessions at once, 1-10.")
    wake_cooldown_seconds: int | None = Field(None, description="0-86400.")
    wake_max_per_day: int | None = Field(None, description="0-1000.")
    wake_max_per_pair_per_day: int | None = Field(None, description="0-1000.")
    wake_max_session_minutes_per_day: int | None = Field(None, description="0-1440.")


class BlackoutOut(BaseModel):
    start: str
    end: str
    label: str


class PulseOut(BaseModel):
    enabled: bool
    interval_minutes: int
    offset_minutes: int
    blackouts: list[BlackoutOut]
    max_consecutive_skips: int
    max_concurrent: int
    wake_cooldown_seconds: int
    wake_max_per_day: int
    wake_max_per_pair_per_day: int
    wake_max_session_minutes_per_day: int


class AgentFields(Body):
    """An agent's fields; in a change, omitted fields stay as they are."""

    name: str | None = Field(None, max_length=_LINE, description="1-80 characters.")
    role: str | None = Field(None, max_length=_LINE, description="A title; at most 120 characters.")
    emoji: str | None = Field(None, max_length=_LINE, description="One emoji; empty: 🤖.")
    identity: str | None = Field(None, max_length=_TEXT, description="Markdown; at most 8,000 characters.")
    personality: str | None = Field(None, max_length=_TEXT, description="Markdown; at most 16,000 characters.")
    procedures: str | None = Field(None, max_length=_TEXT, description="Markdown; at most 16,000 characters.")
    decision_framework: str | None = Field(None, max_length=_TEXT, description="Markdown; at most 12,000 characters.")
    model: str | None = Field(
        None, max_length=_LINE, description="`provider/model`; null or empty: the workspace's default model."
    )
    tools: list[str] | None = Field(
        None, max_length=100, description="From the tool catalogue: read, write, edit, bash, grep, find, ls."
    )
    pulse: PulseIn | None = None


class AgentCreate(AgentFields):
    """A new agent. The persona's four sections hold 32,000 characters in all."""

    id: str = Field(max_length=_LINE, description="Lowercase letters, digits and hyphens, e.g. `software-engineer`.")
    name: str = Field(max_length=_LINE, description="1-80 characters.")


class AgentPatch(AgentFields):
    pass


class AgentPreview(AgentFields):
    """A draft to preview: nothing is saved."""


class AgentClone(Body):
    id: str = Field(max_length=_LINE, description="The copy's id.")
    name: str = Field("", max_length=_LINE, description="The copy's name; empty: the original's with “(copy)”.")


class AgentOut(BaseModel):
    id: str
    name: str
    role: str
    emoji: str
    identity: str
    personality: str
    procedures: str
    decision_framework: str
    model: str | None = Field(description="`provider/model`; null: the workspace's default model.")
    tools: list[str]
    pulse: PulseOut
    template: str | None = Field(description="The starter it was made from, if any.")
    created_at: datetime
    updated_at: datetime
    created_by: uuid.UUID | None
    updated_by: uuid.UUID | None


AgentList = page_of(AgentOut, "AgentList")


class AgentDetail(AgentOut):
    secrets: list[str] = Field(description="The names of the secrets granted to it.")


class FieldProblem(BaseModel):
    field: str
    message: str


class SystemPrompt(BaseModel):
    system_prompt: str = Field(description="The assembled system prompt, as the agent receives it.")
    problems: list[FieldProblem] = Field(
        description="For a preview: why saving the draft would be refused (empty when it would be accepted)."
    )


class StarterOut(BaseModel):
    id: str
    name: str
    role: str
    emoji: str
    summary: str
    tools: list[str]


class StarterList(BaseModel):
    data: list[StarterOut]


class RosterAdd(Body):
    ids: list[str] = Field(min_length=1, max_length=50, description="Starter ids, added all or none.")


class AgentsAdded(BaseModel):
    data: list[AgentOut]
