"""A small value that validates against a JSON schema: what the demo model answers a structured-output request.

It covers what structured-output schemas use (types, ``enum``/``const``, ``anyOf``/``oneOf``/``allOf``, local
``$ref``s as pydantic writes them, string formats, lengths and bounds, ``minItems``). Objects get every declared
property, not only the required ones: a pipeline step maps top-level fields onto its outputs, so an empty object
would be valid and useless. ``hints`` gives the string for a property name (the demo's routing values).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

_FORMATS = {
    "date-time": "2026-01-01T00:00:00Z",
    "date": "2026-01-01",
    "time": "00:00:00",
    "email": "demo@example.com",
    "uri": "https://example.com/",
    "url": "https://example.com/",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "ipv4": "127.0.0.1",
    "hostname": "example.com",
}
# Past this depth a recursive schema gets only what it requires, so the value stays finite.
_MAX_DEPTH = 6


def example_for_schema(schema: Mapping[str, Any], hints: Mapping[str, str] | None = None) -> Any:
    return _Example(schema, hints or {}).value(schema, name=None, depth=0)


class _Example:
    def __init__(self, root: Mapping[str, Any], hints: Mapping[str, str]) -> None:
        self.root = root
        self.hints = hints

    def resolve(self, ref: str) -> Mapping[str, Any]:
        if not ref.startswith("#/"):
            return {}
        node: Any = self.root
        for part in ref[2:].split("/"):
            node = node.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(node, Mapping) else {}
        return node if isinstance(node, Mapping) else {}

    def value(self, schema: Mapping[str, Any], *, name: str | None, depth: int) -> Any:
        if "$ref" in schema:
            return self.value(
                {**self.resolve(schema["$ref"]), **{k: v for k, v in schema.items() if k != "$ref"}},
                name=name,
                depth=depth,
            )
        if "const" in schema:
            return schema["const"]
        if schema.get("enum"):
            return schema["enum"][0]
        for key in ("anyOf", "oneOf"):
            options = [o for o in schema.get(key, []) if isinstance(o, Mapping)]
            if options:
                # Prefer an option that is not null: a real value says more than an absent one.
                chosen = next((o for o in options if o.get("type") != "null"), options[0])
                return self.value(chosen, name=name, depth=depth)
        if schema.get("allOf"):
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                part = self.resolve(part["$ref"]) if "$ref" in part else part
                merged = {
                    **merged,
                    **part,
                    "properties": {**merged.get("properties", {}), **part.get("properties", {})},
                }
                merged["required"] = [*merged.get("required", []), *part.get("required", [])]
            return self.value(merged, name=name, depth=depth)
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
        if kind == "object":
            return self.object(schema, depth)
        if kind == "array":
            return self.array(schema, name=name, depth=depth)
        if kind == "string":
            return self.string(schema, name)
        if kind in ("integer", "number"):
            return self.number(schema, integer=kind == "integer")
        if kind == "boolean":
            return True
        return None

    def object(self, schema: Mapping[str, Any], depth: int) -> dict[str, Any]:
        properties: Mapping[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        names = [n for n in properties if depth < _MAX_DEPTH or n in required]
        return {n: self.value(properties[n], name=n, depth=depth + 1) for n in names}

    def array(self, schema: Mapping[str, Any], *, name: str | None, depth: int) -> list[Any]:
        count = max(int(schema.get("minItems", 0)), 1 if depth < _MAX_DEPTH else 0)
        items = schema.get("items")
        if isinstance(items, Mapping):
            return [self.value(items, name=name, depth=depth + 1) for _ in range(count)]
        prefix = schema.get("prefixItems", [])
        return [self.value(p, name=name, depth=depth + 1) for p in prefix] or ["example"] * count

    def string(self, schema: Mapping[str, Any], name: str | None) -> str:
        if name is not None and name in self.hints:
            return self.hints[name]
        text = _FORMATS.get(str(schema.get("format")), f"Demo {name}" if name else "Demo value")
        low, high = int(schema.get("minLength", 0)), schema.get("maxLength")
        if len(text) < low:
            text = text + "." * (low - len(text))
        if isinstance(high, int) and len(text) > high:
            text = text[:high]
        return text

    def number(self, schema: Mapping[str, Any], *, integer: bool) -> int | float:
        low, high = schema.get("minimum"), schema.get("maximum")
        above, below = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if integer:
            if low is None and above is not None:
                low = math.floor(above) + 1
            if high is None and below is not None:
                high = math.ceil(below) - 1
            value: float = low if low is not None else min(1, high) if high is not None else 1
            multiple = schema.get("multipleOf")
            if isinstance(multiple, int) and multiple > 0:
                value = math.ceil(value / multiple) * multiple
            return int(value)
        # A float between two exclusive bounds has only the space between them: take the middle.
        upper = high if high is not None else below
        if low is not None:
            return float(low)
        if above is not None:
            return float((above + upper) / 2 if upper is not None else above + 1)
        if upper is not None:
            return float(min(1, upper) if high is not None else upper - 1)
        return 1.0
