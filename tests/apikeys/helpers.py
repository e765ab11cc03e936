"""Helpers for API key tests: keys made through the service, and the app with small probe routes mounted.

The probes stand in for JSON API operations: they use the same pieces any API route uses
(``request.state.api_principal``, ``require_scope``, ``effective_role``), so the tests pin the contract.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from app.api.principal import ApiPrincipal, Scope
from app.apikeys.auth import require_scope
from app.apikeys.models import ApiKey
from app.apikeys.service import Actor, create_key, effective_role
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.tenants.models import Membership, Workspace
from app.tenants.permissions import Role

PROBE_PREFIX = "/api/v1"


async def make_key(
    db: Database,
    workspace: Workspace,
    creator: User,
    role: str,
    *,
    kind: str = "personal",
    scope: str = "read",
    expires_at: datetime | None = None,
    name: str = "test key",
) -> tuple[ApiKey, str]:
    """A key made the way the page makes it; ``role`` is the creator's role in the workspace."""
    actor = Actor(user_id=creator.id, role=Role(role))
    async with db.public_session() as session:
        return await create_key(
            session, workspace_id=workspace.id, actor=actor, name=name, kind=kind, scope=scope, expires_at=expires_at
        )


async def set_key(db: Database, key: ApiKey, **values: Any) -> None:
    async with db.public_session() as session:
        await session.execute(update(ApiKey).where(ApiKey.id == key.id).values(**values))


async def load_key(db: Database, key: ApiKey) -> ApiKey:
    async with db.public_session() as session:
        row = await session.get(ApiKey, key.id, populate_existing=True)
        assert row is not None
        return row


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# --- probe routes --------------------------------------------------------------------------------------------


def _principal_json(principal: ApiPrincipal) -> dict[str, Any]:
    return {
        "kind": principal.kind,
        "user_id": str(principal.user.id) if principal.user else None,
        "workspace_id": principal.workspace_id,
        "scopes": sorted(scope.value for scope in principal.scopes),
        "key_id": str(principal.key_id),
    }


async def whoami(request: Request) -> Response:
    return JSONResponse(_principal_json(require_scope(request, Scope.READ)))


async def write(request: Request) -> Response:
    return JSONResponse({"written": True, **_principal_json(require_scope(request, Scope.WRITE))})


async def _reachable(request: Request, principal: ApiPrincipal) -> tuple[Workspace, Role]:
    database: Database = request.app.state.db
    async with database.public_session() as session:
        workspace = await session.scalar(select(Workspace).where(Workspace.slug == request.path_params["slug"]))
        member_role = None
        if workspace is not None and principal.user is not None:
            member_role = await session.scalar(
                select(Membership.role).where(
                    Membership.workspace_id == workspace.id, Membership.user_id == principal.user.id
                )
            )
    role = effective_role(principal, workspace.id, member_role) if workspace is not None else None
    if workspace is None or role is None:
        raise HTTPException(404)
    return workspace, role


async def workspace_probe(request: Request) -> Response:
    """GET: the workspace and the role the caller acts with. POST (write): renames the workspace."""
    principal = require_scope(request, Scope.WRITE if request.method == "POST" else Scope.READ)
    workspace, role = await _reachable(request, principal)
    if request.method == "POST":
        database: Database = request.app.state.db
        async with database.public_session() as session:
            await session.execute(update(Workspace).where(Workspace.id == workspace.id).values(name="Probed"))
    return JSONResponse({"slug": workspace.slug, "role": role.value})


async def workspaces_probe(request: Request) -> Response:
    """The workspaces the caller may act in (what ``GET /api/v1/workspaces`` must list)."""
    principal = require_scope(request, Scope.READ)
    database: Database = request.app.state.db
    async with database.public_session() as session:
        if principal.user is not None:
            rows = list(
                await session.execute(
                    select(Workspace, Membership.role)
                    .join(Membership, Membership.workspace_id == Workspace.id)
                    .where(Membership.user_id == principal.user.id)
                )
            )
        else:
            rows = [(await session.get(Workspace, principal.workspace_id), None)]
    items = [
        {"slug": workspace.slug}
        for workspace, member_role in rows
        if workspace is not None and effective_role(principal, workspace.id, member_role) is not None
    ]
    return JSONResponse({"data": items})


PROBES = [
    Route(f"{PROBE_PREFIX}/_probe", whoami, methods=["GET"]),
    Route(f"{PROBE_PREFIX}/_probe", write, methods=["POST"]),
    Route(f"{PROBE_PREFIX}/_probe/workspaces", workspaces_probe, methods=["GET"]),
    Route(f"{PROBE_PREFIX}/workspaces/{{slug}}/_probe", workspace_probe, methods=["GET", "POST"]),
]


def probe_app(settings: Settings) -> Starlette:
    """The real application (every middleware, every route) plus the probe routes, first so that no catch-all
    of the API (a Mount of /api/v1) hides them."""
    app = create_app(settings)
    app.router.routes[0:0] = PROBES
    return app
