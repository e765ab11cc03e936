"""A tiny declarative layer for the JSON API: ``@api_route(...)`` declares an operation once, and from that one
declaration come its authentication, workspace resolution, scope and role checks, input validation, output
serialisation, its Starlette route and its entry in the OpenAPI document.

    @api_route("GET", "/workspaces/{slug}/members", scope=Scope.READ, permission="members.view",
               query=PageQuery, response=MemberList, summary="List members", tags=["Members"])
    async def list_members(call: Call) -> MemberList: ...

The order of the checks is part of the contract: authenticate (401) → workspace (404) → who may call it
(403) → scope (403) → role permission (403) → path ids (404) → query (422) → body (413, 415, 422).
A caller that may not see a workspace learns nothing else about it, not even whether its input was valid.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response

from app.api.auth import authenticate, require_permission, require_scope, resolve
from app.api.errors import ApiError, api_error_of, error_json, from_pydantic, validation_error
from app.api.principal import ApiPrincipal, Scope
from app.errors import ServiceError
from app.tenants.context import WorkspaceAccess, WorkspaceContext

logger = logging.getLogger("marid.api")

MAX_BODY_BYTES = 64 * 1024
# Who may call an operation: anyone authenticated, a user (session or personal key), or a browser session only.
Actors = Literal["any", "user", "session"]
_PARAM = re.compile(r"\{([a-z_]+)\}")
NUL_MESSAGE = "Text cannot contain NUL characters."


@dataclass
class Call:
    """One authorised call of an operation: who, where, and the validated input."""

    request: Request
    principal: ApiPrincipal
    target: WorkspaceAccess | None
    params: dict[str, Any]
    query: Any
    body: Any

    @property
    def workspace(self) -> WorkspaceAccess:
        assert self.target is not None, "only workspace operations have a workspace"
        return self.target

    @property
    def person(self) -> WorkspaceContext:
        """The acting person in the workspace (operations declared ``actors="user"``; 403 for a service key)."""
        return self.workspace.context


Handler = Callable[[Call], Awaitable[BaseModel | Response | None]]


@dataclass(frozen=True)
class Operation:
    method: str
    path: str  # relative to /api/v1
    handler: Handler
    scope: Scope
    permission: str | None
    response: type[BaseModel] | None
    status: int
    body: type[BaseModel] | None
    query: type[BaseModel] | None
    summary: str
    description: str
    tags: tuple[str, ...]
    actors: Actors

    @property
    def operation_id(self) -> str:
        return self.handler.__name__.strip("_")

    @property
    def workspace_scoped(self) -> bool:
        return self.path.startswith("/workspaces/{slug}")

    @property
    def path_params(self) -> list[str]:
        return _PARAM.findall(self.path)

    @property
    def errors(self) -> list[int]:
        """Every error status the operation can answer with (all documented in the OpenAPI document)."""
        # 400: a NUL character in the address (app.web.input_guard), refused before any route.
        found = {400, 401, 403, 429, 500, 503}
        if self.workspace_scoped or any(name.endswith("_id") for name in self.path_params):
            found.add(404)
        # Mutations can be refused by a business rule even without input to validate.
        if self.query is not None or self.body is not None or self.method != "GET":
            found.add(422)
        if self.body is not None:
            found |= {413, 415}
        return sorted(found)


REGISTRY: list[Operation] = []


def api_route(
    method: str,
    path: str,
    *,
    scope: Scope,
    summary: str,
    tags: list[str],
    permission: str | None = None,
    response: type[BaseModel] | None = None,
    status: int = 200,
    body: type[BaseModel] | None = None,
    query: type[BaseModel] | None = None,
    description: str = "",
    actors: Actors = "any",
) -> Callable[[Handler], Handler]:
    """Declare an operation (see the module docstring); the handler is returned unchanged."""

    def register(handler: Handler) -> Handler:
        operation = Operation(
            method=method,
            path=path,
            handler=handler,
            scope=scope,
            permission=permission,
            response=response,
            status=status if response is not None else 204,
            body=body,
            query=query,
            summary=summary,
            description=description or (handler.__doc__ or "").strip(),
            tags=tuple(tags),
            actors=actors,
        )
        if any(op.method == method and op.path == path for op in REGISTRY):
            raise ValueError(f"{method} {path} is declared twice")
        REGISTRY.append(operation)
        return handler

    return register


async def dispatch(operation: Operation, request: Request) -> Response:
    """Run one call of ``operation``: every check, then the handler; every failure as the JSON error body."""
    try:
        call = await _authorise(operation, request)
        result = await operation.handler(call)
    except ApiError as error:
        return error_json(error)
    except ServiceError as error:
        return error_json(api_error_of(error))
    except HTTPException as error:
        return error_json(ApiError(error.status_code, error.detail, headers=dict(error.headers or {})))
    except ClientDisconnect:
        return Response(status_code=400)
    except Exception:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_json(ApiError(500))
    if isinstance(result, Response):
        response = result
    elif result is None:
        response = Response(status_code=204)
    else:
        response = JSONResponse(result.model_dump(mode="json", by_alias=True), status_code=operation.status)
    response.headers.setdefault("Cache-Control", "no-store")
    return response


async def _authorise(operation: Operation, request: Request) -> Call:
    principal = authenticate(request)
    target: WorkspaceAccess | None = None
    if operation.workspace_scoped:
        target = await resolve(request, principal, request.path_params["slug"])
    _check_actor(operation.actors, principal)
    require_scope(principal, operation.scope)
    if operation.permission is not None:
        if target is None:
            raise AssertionError(f"{operation.path}: a permission needs a workspace")
        require_permission(target, operation.permission)
    params = _path_params(operation, request)
    query = _query(operation.query, request)
    body = await _body(operation.body, request) if operation.body is not None else None
    return Call(request=request, principal=principal, target=target, params=params, query=query, body=body)


def _check_actor(actors: Actors, principal: ApiPrincipal) -> None:
    if actors == "session" and principal.kind != "session":
        raise ApiError(403, "Only a signed-in browser session can do this, not an API key.", code="session_required")
    if actors == "user" and principal.user is None:
        raise ApiError(403, "Service keys cannot do this; use a personal API key or sign in.", code="user_required")


def _path_params(operation: Operation, request: Request) -> dict[str, Any]:
    """Path values; ``*_id`` must be UUIDs, and one that is not names nothing (404, not 422)."""
    values: dict[str, Any] = {}
    for name in operation.path_params:
        raw = str(request.path_params[name])
        if name.endswith("_id"):
            try:
                values[name] = uuid.UUID(raw)
            except ValueError:
                raise ApiError(404) from None
        else:
            values[name] = raw
    return values


def _query(model: type[BaseModel] | None, request: Request) -> Any:
    """Known query parameters validated by ``model``; unknown ones are ignored, a repeated one is refused."""
    if model is None:
        return None
    names = {info.alias or name for name, info in model.model_fields.items()}
    raw: dict[str, str] = {}
    for key, value in request.query_params.multi_items():
        if key not in names:
            continue
        if key in raw:
            raise validation_error([{"field": key, "message": "Give this parameter once."}])
        if "\x00" in value:
            raise validation_error([{"field": key, "message": NUL_MESSAGE}])
        raw[key] = value
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        raise from_pydantic(error) from None


async def _body(model: type[BaseModel], request: Request) -> Any:
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if content_type != "application/json" and not content_type.endswith("+json"):
        raise ApiError(415)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise ApiError(413, f"The request body must be at most {MAX_BODY_BYTES // 1024} KB.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise ApiError(413, f"The request body must be at most {MAX_BODY_BYTES // 1024} KB.")
        chunks.append(chunk)
    try:
        body = model.model_validate_json(b"".join(chunks))
    except ValidationError as error:
        raise from_pydantic(error) from None
    where = _nul_at(body.model_dump())
    if where is not None:
        raise validation_error([{"field": where or "body", "message": NUL_MESSAGE}])
    return body


def _nul_at(value: Any, path: str = "") -> str | None:
    """The dotted path of the first string holding a NUL character (PostgreSQL text cannot store one)."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else []
    for key, item in items:
        found = _nul_at(item, f"{path}.{key}" if path else str(key))
        if found is not None:
            return found
    return None
