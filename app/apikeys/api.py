"""``/workspaces/{slug}/api-keys``: list, create and revoke API keys (twin of /w/{slug}/api-keys).

Who may see, create and revoke which keys is decided by ``app.apikeys.service`` for the acting
:class:`~app.apikeys.service.Actor` (``actor_of``), exactly as for the page; the audit entries
are the service's own (they note ``via_key_id`` when a key did it). Creating a key needs a signed-in person
(the browser session; 403 ``session_required`` for every API key): a leaked key must not mint a successor that
outlives its revocation. Revoking needs ``write``: one's own keys, or any key with ``members.manage``.
"""

from __future__ import annotations

from pydantic import BaseModel

from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, newest_first, paginate
from app.api.principal import Scope
from app.api.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyList, ApiKeyOut
from app.apikeys import service
from app.apikeys.service import Actor, KeyView, actor_of
from app.db import Database
from app.web.state import changes, db_of


def key_out(view: KeyView) -> ApiKeyOut:
    key = view.key
    return ApiKeyOut(
        id=key.id,
        name=key.name,
        kind=key.kind,
        scope=key.scope,
        effective_scope=view.effective_scope,
        status=view.status,
        prefix=view.prefix,
        owner=view.owner,
        user_id=key.user_id,
        created_by=key.created_by,
        created_at=key.created_at,
        expires_at=key.expires_at,
        last_used_at=key.last_used_at,
        last_used_ip=key.last_used_ip,
        revoked_at=key.revoked_at,
        mine=view.mine,
        revocable=view.revocable,
    )


async def _views(database: Database, workspace_id: str, actor: Actor) -> list[KeyView]:
    async with database.public_session() as session:
        return await service.list_keys(session, workspace_id, actor)


@api_route(
    "GET",
    "/workspaces/{slug}/api-keys",
    scope=Scope.READ,
    permission="workspace.view",
    query=PageQuery,
    response=ApiKeyList,
    summary="List API keys",
    tags=["API keys"],
)
async def list_api_keys(call: Call) -> BaseModel:
    """Your own keys; owners and admins see every key of the workspace. Usable keys first, newest first."""
    views = await _views(db_of(call.request), call.workspace.workspace.id, actor_of(call.workspace))
    page = paginate(
        views,
        lambda v: (0 if v.status == "active" else 1, newest_first(v.key.created_at), str(v.key.id)),
        (int, int, str),
        call.query,
    )
    return envelope(ApiKeyList, page, key_out)


@api_route(
    "POST",
    "/workspaces/{slug}/api-keys",
    scope=Scope.ADMIN,
    permission="workspace.view",
    actors="session",
    body=ApiKeyCreate,
    response=ApiKeyCreated,
    status=201,
    summary="Create an API key",
    tags=["API keys"],
)
async def create_api_key(call: Call) -> ApiKeyCreated:
    """A personal key holds at most your role's scope (viewer: read, member: write, admin and owner: admin);
    service keys need an owner or admin. Only a signed-in person creates keys: API keys get 403
    `session_required`. The answer holds the key itself, once."""
    actor = actor_of(call.workspace)
    body: ApiKeyCreate = call.body
    workspace_id = call.workspace.workspace.id
    async with changes(call.request) as session:
        key, token = await service.create_key(
            session,
            workspace_id=workspace_id,
            actor=actor,
            name=body.name,
            kind=body.kind,
            scope=body.scope,
            expires_at=body.expires_at,
        )
    view = next(view for view in await _views(db_of(call.request), workspace_id, actor) if view.key.id == key.id)
    return ApiKeyCreated(**key_out(view).model_dump(), token=token)


@api_route(
    "DELETE",
    "/workspaces/{slug}/api-keys/{key_id}",
    scope=Scope.WRITE,
    permission="workspace.view",
    summary="Revoke an API key",
    tags=["API keys"],
)
async def revoke_api_key(call: Call) -> None:
    """The key's next request is refused. Your own keys, or any key with `members.manage`; a key you may not
    revoke is reported as not found."""
    async with changes(call.request) as session:
        await service.revoke_key(
            session,
            workspace_id=call.workspace.workspace.id,
            actor=actor_of(call.workspace),
            key_id=call.params["key_id"],
        )
