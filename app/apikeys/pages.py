"""The API keys page of a workspace: list, create (the key is shown once, on the response), revoke.

A reload of the "here is your key" page would post the form again and mint a second key; the form carries a
one-time token (``app.web.idempotency``), so a repeated submission is refused instead.
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.apikeys import service
from app.apikeys.format import KeyKind, display_prefix
from app.apikeys.service import Actor, ApiKeyError, actor_of
from app.auth.principal import SCOPE_ORDER
from app.tenants.context import WorkspaceContext
from app.web.forms import read_form
from app.web.guards import workspace_required
from app.web.idempotency import submit_once
from app.web.pages import WorkspacePage
from app.web.state import changes, db_of
from app.web.templating import render

ALREADY_SUBMITTED = (
    "This form was already submitted: that key exists and its token was shown once. "
    "If you did not copy it, revoke the key and create a new one."
)


def _form_defaults() -> dict[str, str]:
    return {"name": "", "kind": KeyKind.PERSONAL.value, "scope": "read", "expires": "90", "expires_on": ""}


async def _data(request: Request, context: WorkspaceContext, values: dict[str, str] | None) -> dict[str, Any]:
    actor = actor_of(context)
    async with db_of(request).public_session() as db:
        keys = await service.list_keys(db, context.workspace.id, actor)
    form = {**_form_defaults(), **(values or {})}
    return {
        "mine": [view for view in keys if view.mine],
        "service_keys": [view for view in keys if view.key.kind == KeyKind.SERVICE],
        "others": [view for view in keys if view.key.kind == KeyKind.PERSONAL and not view.mine],
        "can_manage": actor.can_manage,
        "scopes": _grantable_scopes(actor),
        "max_personal_scope": service.max_scope_for(actor.role).value,
        "expiry_choices": list(service.EXPIRY_CHOICES),
        "values": form,
        "name_max": service.NAME_MAX,
    }


# Someone else's key is "not found" (404), like a key of another workspace: its existence does not leak.
PAGE = WorkspacePage("apikeys/index.html", "api-keys", _data, not_found=404)


def _grantable_scopes(actor: Actor) -> list[str]:
    # Service keys may go up to admin, personal keys up to the actor's role: offer the higher of the two.
    top = SCOPE_ORDER[-1] if actor.can_manage else service.max_scope_for(actor.role)
    return [scope.value for scope in SCOPE_ORDER[: SCOPE_ORDER.index(top) + 1]]


@workspace_required("workspace.view")
async def keys_page(request: Request, context: WorkspaceContext) -> Response:
    return await PAGE.show(request, context)


@workspace_required("workspace.view")
async def create(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    values = {name: form.get(name, default) for name, default in _form_defaults().items()}

    async def already_submitted() -> Response:
        return await PAGE.refuse(request, context, ALREADY_SUBMITTED, values=values, status_code=409)

    async def act() -> Response:
        return await _create(request, context, values)

    # The key is shown once, on this response: a second arrival of the form cannot show it again.
    scope = f"apikeys:{context.workspace.id}"
    return await submit_once(request, form, scope=scope, act=act, duplicate=already_submitted)


async def _create(request: Request, context: WorkspaceContext, values: dict[str, str]) -> Response:
    actor = actor_of(context)
    try:
        expires_at = service.parse_expiry(values["expires"], values["expires_on"])
        async with changes(request) as db:
            key, token = await service.create_key(
                db,
                workspace_id=context.workspace.id,
                actor=actor,
                name=values["name"],
                kind=values["kind"],
                scope=values["scope"],
                expires_at=expires_at,
            )
    except ApiKeyError as refused:
        return await PAGE.refuse(request, context, refused, values=values, status_code=422)
    view = {
        "key": key,
        "token": token,
        "prefix": display_prefix(key.kind, key.lookup_id),
        "api_base": str(request.app.state.settings.base_url).rstrip("/") + "/api/v1",
    }
    return render(request, "apikeys/created.html", view, status_code=201)


@workspace_required("workspace.view")
async def revoke(request: Request, context: WorkspaceContext) -> Response:
    actor = actor_of(context)
    try:
        async with changes(request) as db:
            key = await service.revoke_key(
                db, workspace_id=context.workspace.id, actor=actor, key_id=request.path_params["key_id"]
            )
    except ApiKeyError as refused:
        return await PAGE.refuse(request, context, refused)
    return PAGE.back(request, context, f"Revoked “{key.name}”. It stops working at once.")


routes: list[BaseRoute] = [
    Route("/w/{slug}/api-keys", keys_page, methods=["GET"]),
    Route("/w/{slug}/api-keys", create, methods=["POST"]),
    Route("/w/{slug}/api-keys/{key_id}/revoke", revoke, methods=["POST"]),
]
