"""The API reference page (``GET /api/v1/docs``): the OpenAPI document rendered by our own templates, no
external scripts or styles. Everything shown comes from the same document as ``/api/v1/openapi.json``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from app.api.examples import curl
from app.api.openapi import build_document
from app.config import Settings
from app.web.templating import render

# A piece of rendered text: ("text", s), ("code", s) or ("ref", schema name, linked to its section).
Token = tuple[str, str]
_INLINE = re.compile(r"`([^`]+)`")


def inline(text: str) -> list[Token]:
    """Plain text with `code` spans (the only markup the descriptions use; ``**`` is dropped)."""
    parts: list[Token] = []
    for index, piece in enumerate(_INLINE.split(text.replace("**", ""))):
        if piece:
            parts.append(("code" if index % 2 else "text", piece))
    return parts


def type_of(schema: dict[str, Any]) -> list[Token]:
    if "$ref" in schema:
        return [("ref", schema["$ref"].rsplit("/", 1)[-1])]
    if "anyOf" in schema:
        out: list[Token] = []
        for index, option in enumerate(schema["anyOf"]):
            if index:
                out.append(("text", " or "))
            out += type_of(option)
        return out
    if "enum" in schema:
        out = [("text", "one of ")]
        for index, value in enumerate(schema["enum"]):
            out += [("text", ", ")] if index else []
            out.append(("code", str(value)))
        return out
    kind = schema.get("type", "any")
    if kind == "array":
        return [("text", "list of ")] + type_of(schema.get("items", {}))
    if kind == "object" and "additionalProperties" in schema and isinstance(schema["additionalProperties"], dict):
        return [("text", "object of ")] + type_of(schema["additionalProperties"])
    label = str(kind)
    if "format" in schema:
        label += f" ({schema['format']})"
    limits = [f"{word} {schema[key]}" for key, word in (("minimum", "≥"), ("maximum", "≤")) if key in schema]
    limits += [f"{word} {schema[key]}" for key, word in (("minLength", "min length"), ("maxLength", "max length"))
               if key in schema]  # fmt: skip
    if limits:
        label += ", " + ", ".join(limits)
    return [("text", label)]


@dataclass
class FieldView:
    name: str
    type: list[Token]
    required: bool
    description: list[Token]
    where: str = ""


@dataclass
class OperationView:
    method: str
    path: str
    anchor: str
    summary: str
    description: list[list[Token]]
    parameters: list[FieldView]
    body: list[Token] | None
    success: tuple[str, list[Token] | None]
    errors: list[tuple[str, list[Token]]]
    curl: str = ""


@dataclass
class SchemaView:
    name: str
    description: list[Token]
    fields: list[FieldView] = field(default_factory=list)
    other: list[Token] = field(default_factory=list)


# Said once on the page (in "Errors"), not under every operation: true of every address.
_EVERYWHERE = {"400"}


def _operation_view(path: str, method: str, op: dict[str, Any], curl: str = "") -> OperationView:
    parameters = [
        FieldView(p["name"], type_of(p["schema"]), p["required"], inline(p.get("description", "")), p["in"])
        for p in op.get("parameters", [])
    ]
    body = None
    if "requestBody" in op:
        body = type_of(op["requestBody"]["content"]["application/json"]["schema"])
    success: tuple[str, list[Token] | None] = ("", None)
    errors: list[tuple[str, list[Token]]] = []
    for status, response in op["responses"].items():
        content = response.get("content", {}).get("application/json")
        if status.startswith("2"):
            success = (status, type_of(content["schema"]) if content else None)
        elif status not in _EVERYWHERE:
            errors.append((status, inline(response["description"])))
    return OperationView(
        method=method.upper(),
        path=path,
        anchor=op["operationId"],
        summary=op["summary"],
        description=[inline(paragraph) for paragraph in op.get("description", "").split("\n\n") if paragraph],
        parameters=parameters,
        body=body,
        success=success,
        errors=errors,
        curl=curl,
    )


def _schema_view(name: str, schema: dict[str, Any]) -> SchemaView:
    view = SchemaView(name, inline(schema.get("description", "")))
    required = set(schema.get("required", []))
    for prop, sub in schema.get("properties", {}).items():
        view.fields.append(FieldView(prop, type_of(sub), prop in required, inline(sub.get("description", ""))))
    if not view.fields:
        view.other = type_of(schema)
    return view


def reference(document: dict[str, Any]) -> dict[str, Any]:
    """The template's view of an OpenAPI document: operations grouped by tag, then the schemas."""
    groups: dict[str, list[OperationView]] = {tag["name"]: [] for tag in document.get("tags", [])}
    servers = document.get("servers") or [{"url": ""}]
    base_url = str(servers[0].get("url", ""))
    for path, methods in document["paths"].items():
        for method, op in methods.items():
            command = curl(document, base_url, method, path, op)
            for tag in op.get("tags", ["Other"]):
                groups.setdefault(tag, []).append(_operation_view(path, method, op, command))
    schemas = [_schema_view(name, schema) for name, schema in document["components"]["schemas"].items()]
    intro = [inline(paragraph) for paragraph in document["info"]["description"].split("\n\n") if paragraph]
    return {"groups": groups, "schemas": schemas, "intro": intro, "title": document["info"]["title"]}


def _document(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    return build_document(settings)


async def openapi_json(request: Request) -> Response:
    return JSONResponse(_document(request), headers={"Cache-Control": "no-cache"})


async def docs_page(request: Request) -> Response:
    return render(request, "api/docs.html", reference(_document(request)), block=None)
