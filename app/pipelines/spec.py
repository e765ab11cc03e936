"""The pipeline as typed, immutable objects (DjinnBot's pipeline YAML schema, inventory section 2.4).

Every object keeps where it was written: ``pos`` is the start of its YAML node and ``at`` maps each field's
YAML key to the position of its value, so validation (and later the engine, the editor) can point at the
exact place. Field names are Pythonic; :data:`YAML_NAMES` and the parser keep the YAML spelling.

A pipeline with errors still parses to a best-effort object (a missing text field is ``""``, an ill-typed one
``None``), so the editor can draw the graph while the author types; only a pipeline whose validation has no
errors may run.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from app.pipelines.problems import START, Pos

StepType = Literal["standard", "loop"]
OutputMethod = Literal["response_format", "tool_use"]
_NOWHERE: Mapping[str, Pos] = MappingProxyType({})


@dataclass(frozen=True, kw_only=True)
class Located:
    pos: Pos = START
    at: Mapping[str, Pos] = field(default_factory=lambda: _NOWHERE, compare=False, repr=False)

    def where(self, key: str) -> Pos:
        """Where the value of YAML key ``key`` was written, else where this object starts."""
        return self.at.get(key, self.pos)


@dataclass(frozen=True, kw_only=True)
class Defaults(Located):
    model: str | None = None
    tools: tuple[str, ...] | None = None
    max_retries: int | None = None
    # DjinnBot accepts ``timeout`` or ``timeoutSeconds`` here; ``timeoutSeconds`` wins when both are given.
    timeout_seconds: float | None = None
    max_turns: int | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None


@dataclass(frozen=True, kw_only=True)
class PipelineAgent(Located):
    """A pipeline's reference to a workspace agent (matched by ``id``); ``persona`` is kept but never read."""

    id: str
    name: str = ""
    persona: str | None = None
    model: str | None = None
    tools: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Notify(Located):
    agent: str
    message: str


@dataclass(frozen=True, kw_only=True)
class ResultBranch(Located):
    """One ``onResult`` entry: what to do when an output's trimmed, upper-cased value equals ``value``."""

    value: str
    goto: str | None = None
    retry: bool = False
    max_retries: int | None = None
    notify: Notify | None = None
    continue_loop: bool = False

    @property
    def moves(self) -> bool:
        """Whether the branch says where to go; one that only notifies falls through to ``onComplete``."""
        return self.goto is not None or self.retry or self.continue_loop


@dataclass(frozen=True, kw_only=True)
class Loop(Located):
    over: str
    on_each_complete: str | None = None
    on_all_complete: str | None = None


@dataclass(frozen=True, kw_only=True)
class OutputSchema(Located):
    name: str
    strict: bool | None = None
    # Kept as JSON text so the object stays immutable; :attr:`schema` hands out a fresh copy.
    schema_json: str = "{}"
    # Positions inside the schema by JSON path (keys and list indexes), to place metaschema errors.
    schema_at: Mapping[tuple[str | int, ...], Pos] = field(
        default_factory=lambda: MappingProxyType({}), compare=False, repr=False
    )

    @property
    def schema(self) -> dict[str, Any]:
        value = json.loads(self.schema_json)
        return value if isinstance(value, dict) else {}


@dataclass(frozen=True, kw_only=True)
class Step(Located):
    id: str
    agent: str
    description: str | None = None
    # As written; ``None`` when absent. A step is a loop step when it has a ``loop`` block (see ``is_loop``).
    type: StepType | None = None
    model: str | None = None
    input: str = ""
    outputs: tuple[str, ...] = ()
    on_complete: str | None = None
    # In the order written: the first match wins.
    on_result: tuple[ResultBranch, ...] = ()
    loop: Loop | None = None
    max_retries: int | None = None
    timeout_seconds: float | None = None
    max_turns: int | None = None
    max_output_tokens: int | None = None
    temperature: float | None = None
    output_schema: OutputSchema | None = None
    output_method: OutputMethod | None = None
    # Where the input template lies in the source text (character offsets), to place template findings.
    input_span: tuple[int, int] | None = field(default=None, compare=False, repr=False)

    @property
    def is_loop(self) -> bool:
        # DjinnBot runs a step as a loop when it has a loop block, whatever ``type`` says.
        return self.loop is not None


@dataclass(frozen=True, kw_only=True)
class Pipeline(Located):
    id: str
    name: str
    version: str
    description: str | None = None
    defaults: Defaults = field(default_factory=Defaults)
    agents: tuple[PipelineAgent, ...] = ()
    steps: tuple[Step, ...] = ()

    def step(self, step_id: str) -> Step | None:
        # Linear on purpose: pipelines are small (at most a few hundred steps) and the first of duplicates wins.
        return next((s for s in self.steps if s.id == step_id), None)

    def agent(self, agent_id: str) -> PipelineAgent | None:
        return next((a for a in self.agents if a.id == agent_id), None)

    @property
    def first_step(self) -> Step | None:
        return self.steps[0] if self.steps else None

    @property
    def last_step(self) -> Step | None:
        return self.steps[-1] if self.steps else None


def frozen_positions(positions: dict[str, Pos]) -> Mapping[str, Pos]:
    return MappingProxyType(dict(positions))
