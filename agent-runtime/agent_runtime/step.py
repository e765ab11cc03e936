"""The step a ``start`` frame asks for, checked: a malformed one fails its step instead of crashing the loop."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

JsonObject = dict[str, Any]


@dataclass(frozen=True)
class OutputSchema:
    name: str
    strict: bool
    schema: JsonObject


@dataclass(frozen=True)
class RpcToolSpec:
    """A platform tool the supervisor serves (board, memory, messaging, swarm): called with ``rpc_request``."""

    name: str
    description: str
    parameters: JsonObject


@dataclass(frozen=True)
class Step:
    id: str
    model: str
    max_turns: int
    timeout_seconds: float
    system_prompt: str = ""
    input: str = ""
    tools: tuple[str, ...] = ()
    temperature: float | None = None
    max_output_tokens: int | None = None
    outputs: tuple[str, ...] = ()
    routing: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    output_schema: OutputSchema | None = None
    rpc_tools: tuple[RpcToolSpec, ...] = ()

    @classmethod
    def parse(cls, data: object, rpc_tools: object = None) -> Step:
        """Raises ValueError naming the first bad field."""
        d = _object(data, "step")
        schema = d.get("output_schema")
        return cls(
            id=_text(d, "id"),
            model=_text(d, "model"),
            max_turns=int(_number(d, "max_turns", low=1, integer=True)),
            timeout_seconds=_number(d, "timeout_seconds", low=0.001),
            system_prompt=_text(d, "system_prompt", default=""),
            input=_text(d, "input", default=""),
            tools=_names(d.get("tools", []), "step.tools"),
            temperature=_number(d, "temperature", low=0) if d.get("temperature") is not None else None,
            max_output_tokens=int(_number(d, "max_output_tokens", low=1, integer=True))
            if d.get("max_output_tokens") is not None
            else None,
            outputs=_names(d.get("outputs", []), "step.outputs"),
            routing={
                k: _names(v, f"step.routing.{k}") for k, v in _object(d.get("routing") or {}, "step.routing").items()
            },
            output_schema=None if schema is None else _output_schema(schema),
            rpc_tools=tuple(_rpc_tool(t) for t in _list(rpc_tools or [], "rpc_tools")),
        )


def _object(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object")
    return value


def _list(value: object, where: str) -> list[Any]:
    if not isinstance(value, list):
        raise ValueError(f"{where} must be a list")
    return value


def _text(d: Mapping[str, Any], name: str, *, default: str | None = None) -> str:
    value = d.get(name, default)
    if not isinstance(value, str):
        raise ValueError(f"step.{name} must be a string")
    return value


def _number(d: Mapping[str, Any], name: str, *, low: float, integer: bool = False) -> float:
    value = d.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and not isinstance(value, int)):
        raise ValueError(f"step.{name} must be {'an integer' if integer else 'a number'}")
    if value < low:
        raise ValueError(f"step.{name} must be at least {low}")
    return float(value)


def _names(value: object, where: str) -> tuple[str, ...]:
    items = _list(value, where)
    if not all(isinstance(i, str) and i for i in items):
        raise ValueError(f"{where} must be a list of names")
    return tuple(items)


def _output_schema(value: object) -> OutputSchema:
    d = _object(value, "step.output_schema")
    name, schema = d.get("name"), d.get("schema")
    if not isinstance(name, str) or not name:
        raise ValueError("step.output_schema.name must be a string")
    return OutputSchema(name, bool(d.get("strict", False)), dict(_object(schema, "step.output_schema.schema")))


def _rpc_tool(value: object) -> RpcToolSpec:
    d = _object(value, "rpc_tools[]")
    name, description = d.get("name"), d.get("description", "")
    if not isinstance(name, str) or not name or not isinstance(description, str):
        raise ValueError("rpc_tools[] needs a name and a description")
    return RpcToolSpec(name, description, dict(_object(d.get("parameters", {"type": "object"}), "parameters")))
