"""Copyable ``curl`` commands for the API reference, made from the OpenAPI document itself (so they never drift).

Path parameters become shell variables (``{slug}`` → ``$SLUG``), the key is ``$MARID_API_KEY``, and a request body
is an example built from its schema: the required fields (and a few optional ones), each with a value of its
type, an enum's first value, or its default.
"""

from __future__ import annotations

import json
import re
import shlex
from typing import Any

_PARAM = re.compile(r"\{([a-z_]+)\}")
_STRINGS = {
    "email": "kay@example.com",
    "date-time": "2026-01-31T12:00:00Z",
    "date": "2026-01-31",
    "uri": "https://login.example.com",
}
_NAMED = {"name": "Acme Labs", "emails": "kay@example.com", "email": "kay@example.com", "slug": "acme"}
_KEY_NAMES = {"name": "CI deploys"}


def _resolve(document: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    seen = 0
    while "$ref" in schema and seen < 10:
        schema = document["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        seen += 1
    return schema


def example_value(document: dict[str, Any], schema: dict[str, Any], name: str = "", depth: int = 0) -> Any:
    """A value that fits ``schema`` (what a person would type for it)."""
    schema = _resolve(document, schema)
    if "default" in schema and schema["default"] is not None:
        return schema["default"]
    if "enum" in schema:
        # A role example is the everyday one, not "owner" (which moves only by a transfer).
        return "member" if "member" in schema["enum"] else schema["enum"][0]
    if "anyOf" in schema:
        options = [option for option in schema["anyOf"] if _resolve(document, option).get("type") != "null"]
        return example_value(document, options[0], name, depth) if options else None
    kind = schema.get("type")
    if kind == "object" and depth < 3:
        properties: dict[str, Any] = schema.get("properties", {})
        required = set(schema.get("required", []))
        chosen = [key for key in properties if key in required] or list(properties)[:2]
        names = _KEY_NAMES if "key" in str(schema.get("title", "")).lower() else {}
        return {key: names.get(key) or example_value(document, properties[key], key, depth + 1) for key in chosen}
    if kind == "array":
        return [example_value(document, schema.get("items", {}), name, depth + 1)]
    if kind == "boolean":
        return True
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "string":
        return _STRINGS.get(str(schema.get("format", "")), _NAMED.get(name, "text"))
    return None


def curl(document: dict[str, Any], base_url: str, method: str, path: str, operation: dict[str, Any]) -> str:
    """The operation as a shell command, one option per line."""
    url = _PARAM.sub(lambda match: "$" + match.group(1).upper(), path)
    lines = ["curl"]
    if method.upper() != "GET":
        lines.append(f"-X {method.upper()}")
    lines.append('-H "Authorization: Bearer $MARID_API_KEY"')
    body = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    if body is not None:
        lines.append('-H "Content-Type: application/json"')
        lines.append("-d " + shlex.quote(json.dumps(example_value(document, body), ensure_ascii=False)))
    lines.append(f'"{base_url.rstrip("/")}{url}"')
    return " \\\n  ".join(lines)
