"""``/workspaces/{slug}/secrets``: JSON twins of the secrets pages. Everyone in the workspace may list secrets
(names, masked previews, who gets them); owners and admins (``secrets.manage``) change them. No answer ever
holds a value."""

from __future__ import annotations

from pydantic import BaseModel

from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, paginate
from app.api.principal import Scope
from app.secrets import service
from app.secrets.schemas import GrantOut, SecretCreate, SecretGrants, SecretList, SecretOut, SecretPatch
from app.secrets.service import SecretView
from app.web.state import db_of, secrets_of, workspace_changes

TAGS = ["Secrets"]


def secret_out(view: SecretView) -> SecretOut:
    secret = view.secret
    return SecretOut(
        id=secret.id,
        name=secret.name,
        description=secret.description,
        preview=secret.preview,
        agents=[GrantOut(id=agent_id, name=name) for agent_id, name in view.agents],
        created_at=secret.created_at,
        created_by=secret.created_by,
        updated_at=secret.updated_at,
        updated_by=secret.updated_by,
        value_updated_at=secret.value_updated_at,
    )


async def _read(call: Call) -> SecretOut:
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        return secret_out(await service.get_secret(session, call.params["secret_id"]))


@api_route(
    "GET", "/workspaces/{slug}/secrets", scope=Scope.READ, permission="workspace.view", query=PageQuery,
    response=SecretList, summary="List secrets", tags=TAGS,
)  # fmt: skip
async def list_workspace_secrets(call: Call) -> BaseModel:
    """Every secret by name, masked, with the agents that get it."""
    async with db_of(call.request).tenant_session(call.workspace.workspace.id) as session:
        views = await service.list_secrets(session)
    page = paginate(views, lambda v: (v.secret.name, str(v.secret.id)), (str, str), call.query)
    return envelope(SecretList, page, secret_out)


@api_route(
    "GET", "/workspaces/{slug}/secrets/{secret_id}", scope=Scope.READ, permission="workspace.view",
    response=SecretOut, summary="Get a secret (masked)", tags=TAGS,
)  # fmt: skip
async def get_workspace_secret(call: Call) -> SecretOut:
    """A secret's name, description, masked preview and grants; never its value."""
    return await _read(call)


@api_route(
    "POST", "/workspaces/{slug}/secrets", scope=Scope.ADMIN, permission="secrets.manage", body=SecretCreate,
    response=SecretOut, status=201, summary="Add a secret", tags=TAGS,
)  # fmt: skip
async def create_workspace_secret(call: Call) -> SecretOut:
    """Seal a new secret. The answer holds its masked preview; the value cannot be read back, ever."""
    body: SecretCreate = call.body
    workspace_id = call.workspace.workspace.id
    async with workspace_changes(call.request, workspace_id) as session:
        secret = await service.create_secret(
            session,
            secrets_of(call.request),
            workspace_id,
            call.workspace.actor,
            name=body.name,
            value=body.value,
            description=body.description,
        )
    call.params["secret_id"] = secret.id
    return await _read(call)


@api_route(
    "PATCH", "/workspaces/{slug}/secrets/{secret_id}", scope=Scope.ADMIN, permission="secrets.manage",
    body=SecretPatch, response=SecretOut, summary="Change a secret", tags=TAGS,
)  # fmt: skip
async def update_workspace_secret(call: Call) -> SecretOut:
    """A new description, a new value, or both, in one change."""
    body: SecretPatch = call.body
    workspace_id = call.workspace.workspace.id
    async with workspace_changes(call.request, workspace_id) as session:
        await service.get_secret(session, call.params["secret_id"])
        if body.description is not None:
            await service.describe_secret(session, call.workspace.actor, call.params["secret_id"], body.description)
        if body.value is not None:
            await service.replace_value(
                session,
                secrets_of(call.request),
                workspace_id,
                call.workspace.actor,
                call.params["secret_id"],
                body.value,
            )
    return await _read(call)


@api_route(
    "PUT", "/workspaces/{slug}/secrets/{secret_id}/grants", scope=Scope.ADMIN, permission="secrets.manage",
    body=SecretGrants, response=SecretOut, summary="Choose the agents that get a secret", tags=TAGS,
)  # fmt: skip
async def set_secret_grants(call: Call) -> SecretOut:
    """Exactly the agents listed get the secret from now on (an empty list: none)."""
    body: SecretGrants = call.body
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        await service.set_grants(session, call.workspace.actor, call.params["secret_id"], body.agents)
    return await _read(call)


@api_route(
    "DELETE", "/workspaces/{slug}/secrets/{secret_id}", scope=Scope.ADMIN, permission="secrets.manage",
    summary="Delete a secret", tags=TAGS,
)  # fmt: skip
async def delete_workspace_secret(call: Call) -> None:
    """Delete a secret and its grants; agents stop getting it from their next step on."""
    async with workspace_changes(call.request, call.workspace.workspace.id) as session:
        await service.delete_secret(session, call.workspace.actor, call.params["secret_id"])
