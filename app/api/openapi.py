"""The OpenAPI 3.1 document of ``/api/v1``, generated from the registered operations and their pydantic models
(``GET /api/v1/openapi.json``)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaMode, models_json_schema

from app.api.errors import DEFAULTS
from app.api.operations import MAX_BODY_BYTES, REGISTRY, Operation
from app.api.schemas import Error
from app.config import Settings

REF = "#/components/schemas/{model}"
TAG_ORDER = ["Account", "Workspaces", "Members", "Invitations", "Audit log", "API keys"]
DESCRIPTION = f"""\
Marid's JSON API: every page of the web app has a twin here, served by the same code.

**Authentication.** Send an API key as `Authorization: Bearer <key>`, or use the browser session: the session
cookie, plus the header `X-CSRF-Token` (the value of the CSRF cookie) on every POST, PATCH and DELETE.
A key is bound to one workspace; its scopes (`read` < `write` < `admin`) limit which operations it may call,
and its role (a personal key: its owner's role; a service key: the role its scopes imply) limits what it may
do there. A workspace you may not see answers 404, like one that does not exist.

**Errors** always have the body `{{"error": {{"code", "message", "details"}}}}`; a `validation_error` lists
each problem in `details.errors` as `{{field, message}}`. Request bodies are JSON, at most
{MAX_BODY_BYTES // 1024} KB; unknown query parameters are ignored.

**Listings** take `limit` (1-100, default 50) and `cursor`, and answer `{{"data": [...], "next_cursor"}}`:
pass `next_cursor` back as `cursor` for the next page; it is null on the last one.
"""


def _drop_null(schema: dict[str, Any]) -> dict[str, Any]:
    """``X | None`` as a query or path parameter is just X (absent means None); titles are noise there."""
    schema = {key: value for key, value in schema.items() if key != "title"}
    options = schema.get("anyOf")
    if isinstance(options, list):
        rest = [option for option in options if option != {"type": "null"}]
        if len(rest) == 1:
            schema.pop("anyOf")
            schema = {**rest[0], **schema}
    if schema.get("default", 0) is None:
        schema.pop("default")
    return schema


def _path_parameter(name: str) -> dict[str, Any]:
    if name == "slug":
        schema: dict[str, Any] = {"type": "string", "pattern": "^[a-z0-9-]{1,48}$"}
        description = "The workspace's URL name."
    elif name == "agent":
        schema = {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,47}$"}
        description = "The agent's id (unique in its workspace), like `software-engineer`."
    else:
        schema = {"type": "string", "format": "uuid"}
        description = "An id; one that names nothing here answers 404."
    return {"name": name, "in": "path", "required": True, "schema": schema, "description": description}


def _query_parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    parameters = []
    required = set(schema.get("required", []))
    for name, info in model.model_fields.items():
        key = info.alias or name
        prop = _drop_null(dict(schema["properties"][key]))
        parameter: dict[str, Any] = {"name": key, "in": "query", "required": key in required, "schema": prop}
        if "description" in prop:
            parameter["description"] = prop.pop("description")
        parameters.append(parameter)
    return parameters


def _codes(codes: list[str]) -> str:
    return ", ".join(f"`{code}`" for code in codes)


def _error_text(status: int, op: Operation) -> str:
    """What a refusal with ``status`` means for this operation, with the error codes it may carry."""
    if status == 401:
        return "Not signed in, or the API key is not usable: " + _codes(
            ["authentication_required", "invalid_api_key", "revoked_api_key", "expired_api_key"]
        )
    if status == 403:
        reasons = ["`insufficient_scope` (the key lacks the scope)", "`email_unverified`"]
        if op.permission:
            reasons.insert(0, "`forbidden` (your role lacks the permission)")
        if op.workspace_scoped:
            reasons.append("`two_factor_required` (the workspace requires 2FA)")
        if op.actors == "user":
            reasons.append("`user_required` (not for service keys)")
        if op.actors == "session":
            reasons.append("`session_required` (not for API keys)")
        if op.method != "GET":
            reasons.append("`not_allowed` (a session call without a valid `X-CSRF-Token`)")
        return "Not allowed: " + "; ".join(reasons) + "."
    if status == 400:
        return "`bad_request`: the address contains a NUL character."
    if status == 404:
        return "`not_found`: no such workspace (or not one you may see), or nothing with that id in it."
    if status == 422:
        return (
            "`validation_error` (input that does not fit the schema; `details.errors` lists each problem), "
            "or `invalid_request` (a rule refused it; `message` says which)."
        )
    code, message = DEFAULTS[status]
    return f"`{code}`: {message}"


def _error_response(status: int, op: Operation) -> dict[str, Any]:
    return {
        "description": _error_text(status, op),
        "content": {"application/json": {"schema": {"$ref": REF.format(model="Error")}}},
    }


def _operation(op: Operation, refs: dict[Any, Any], queries: dict[Any, Any]) -> Any:
    needs = [f"scope `{op.scope.value}`"]
    if op.permission:
        needs.append(f"permission `{op.permission}`")
    if op.actors == "user":
        needs.append("a user (a session or a personal key; not a service key)")
    elif op.actors == "session":
        needs.append("a browser session (API keys get 403)")
    document: dict[str, Any] = {
        "operationId": op.operation_id,
        "summary": op.summary,
        "description": (op.description + "\n\n" if op.description else "") + "Requires " + ", ".join(needs) + ".",
        "tags": list(op.tags),
        "x-marid-scope": op.scope.value,
        "x-marid-permission": op.permission,
        "x-marid-actors": op.actors,
        "parameters": [_path_parameter(name) for name in op.path_params],
    }
    if op.query is not None:
        document["parameters"] += _query_parameters(op.query, queries[op.query])
    if op.body is not None:
        document["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": refs[(op.body, "validation")]}},
        }
    responses: dict[str, Any] = {}
    if op.response is not None:
        responses[str(op.status)] = {
            "description": op.response.__doc__.strip().splitlines()[0] if op.response.__doc__ else "Success",
            "content": {"application/json": {"schema": refs[(op.response, "serialization")]}},
        }
    else:
        responses["204"] = {"description": "Done; no content."}
    for status in op.errors:
        responses[str(status)] = _error_response(status, op)
    document["responses"] = responses
    return document


def build_document(settings: Settings) -> dict[str, Any]:
    wanted: list[tuple[type[BaseModel], JsonSchemaMode]] = [(Error, "serialization")]
    query_models: list[type[BaseModel]] = []
    for op in REGISTRY:
        if op.response is not None:
            wanted.append((op.response, "serialization"))
        if op.body is not None:
            wanted.append((op.body, "validation"))
        if op.query is not None and op.query not in query_models:
            query_models.append(op.query)
    unique = list(dict.fromkeys(wanted))
    refs, top = models_json_schema(unique, ref_template=REF)
    queries = {model: model.model_json_schema(ref_template=REF) for model in query_models}
    components = dict(top.get("$defs", {}))
    for schema in queries.values():
        components.update(schema.pop("$defs", {}))
    paths: dict[str, dict[str, Any]] = {}
    for op in REGISTRY:
        paths.setdefault("/api/v1" + op.path, {})[op.method.lower()] = _operation(op, refs, queries)
    used_tags = {tag for op in REGISTRY for tag in op.tags}
    tags = [{"name": tag} for tag in TAG_ORDER if tag in used_tags]
    tags += [{"name": tag} for tag in sorted(used_tags - set(TAG_ORDER))]
    return {
        "openapi": "3.1.0",
        "info": {"title": "Marid API", "version": "1", "description": DESCRIPTION},
        "servers": [{"url": settings.base_url.rstrip("/")}],
        "tags": tags,
        "paths": paths,
        "components": {
            "schemas": dict(sorted(components.items())),
            "securitySchemes": {
                "apiKey": {
                    "type": "http",
                    "scheme": "bearer",
                    "description": "An API key: `Authorization: Bearer marid_…`.",
                },
                "session": {
                    "type": "apiKey",
                    "in": "cookie",
                    "name": settings.session_cookie,
                    "description": "The browser session; unsafe methods also need the `X-CSRF-Token` header.",
                },
            },
        },
        "security": [{"apiKey": []}, {"session": []}],
    }
