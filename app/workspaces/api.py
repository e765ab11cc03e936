"""``/workspaces``: the caller's workspaces, one workspace, and its settings (twin of /workspaces and
/w/{slug}/settings)."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select

from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, envelope, paginate
from app.api.principal import ApiPrincipal, Scope
from app.api.schemas import WorkspaceList, WorkspaceOut, WorkspacePatch
from app.auth.principal import effective_role
from app.db import Database
from app.tenants.context import WorkspaceAccess, workspaces_of
from app.tenants.models import Membership, Workspace
from app.web.state import changes, db_of
from app.workspaces import service


def workspace_out(workspace: Workspace, acts_as: str, member_role: str | None = None) -> WorkspaceOut:
    """``member_role``: the caller's own role there (None for a service key: it has only what it acts as)."""
    return WorkspaceOut(
        id=workspace.id,
        slug=workspace.slug,
        name=workspace.name,
        require_2fa=workspace.require_2fa,
        created_at=workspace.created_at,
        role=member_role or acts_as,
        acts_as=acts_as,
    )


async def _visible(db: Database, principal: ApiPrincipal) -> list[tuple[Workspace, str, str | None]]:
    """Workspaces the principal may act in, with its effective role: a user's memberships (a key's one)."""
    async with db.public_session() as session:
        if principal.user is not None:
            pairs = await workspaces_of(session, principal.user)
            memberships = {
                m.workspace_id: m
                for m in await session.scalars(select(Membership).where(Membership.user_id == principal.user.id))
            }
        else:
            only = await session.get(Workspace, principal.workspace_id) if principal.workspace_id else None
            pairs = [(only, "")] if only is not None else []
            memberships = {}
    visible = []
    for workspace, _role in pairs:
        if principal.may_use_workspace(workspace.id):
            membership = memberships.get(workspace.id)
            member_role = membership.role if membership is not None else None
            role = effective_role(principal, workspace.id, member_role)
            if role is not None:
                visible.append((workspace, role.value, member_role))
    return visible


@api_route(
    "GET",
    "/workspaces",
    scope=Scope.READ,
    query=PageQuery,
    response=WorkspaceList,
    summary="List your workspaces",
    tags=["Workspaces"],
)
async def list_workspaces(call: Call) -> BaseModel:
    """The workspaces you belong to, by name (an API key: the one workspace it is bound to)."""
    visible = await _visible(db_of(call.request), call.principal)
    page = paginate(visible, lambda row: (row[0].name, row[0].id), (str, str), call.query)
    return envelope(WorkspaceList, page, lambda row: workspace_out(*row))


@api_route(
    "GET",
    "/workspaces/{slug}",
    scope=Scope.READ,
    permission="workspace.view",
    response=WorkspaceOut,
    summary="Get a workspace",
    tags=["Workspaces"],
)
async def get_workspace(call: Call) -> WorkspaceOut:
    return workspace_out(call.workspace.workspace, call.workspace.role, _member_role(call.workspace))


def _member_role(access: WorkspaceAccess) -> str | None:
    return access.membership.role if access.membership is not None else None


@api_route(
    "PATCH",
    "/workspaces/{slug}",
    scope=Scope.ADMIN,
    permission="settings.edit",
    actors="user",
    body=WorkspacePatch,
    response=WorkspaceOut,
    summary="Change workspace settings",
    tags=["Workspaces"],
)
async def update_workspace(call: Call) -> WorkspaceOut:
    """Rename the workspace or change its 2FA requirement (the settings page's form, with the same rules and
    audit entries: requiring 2FA needs 2FA on your own account first)."""
    target: WorkspaceAccess = call.workspace
    patch: WorkspacePatch = call.body
    current = target.workspace
    async with changes(call.request) as session:
        # The settings page's own service call (app.workspaces.pages.save_settings).
        updated, _ = await service.save_settings(
            session,
            workspace_id=current.id,
            actor=call.person.actor,
            name=patch.name if patch.name is not None else current.name,
            require_2fa=patch.require_2fa if patch.require_2fa is not None else current.require_2fa,
        )
    return workspace_out(updated, target.role, _member_role(target))
