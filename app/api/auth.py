"""Who is calling (an API key or the browser session), which workspace they act in, and with what role.

Three checks, all of which must pass, in this order:

1. **Workspace**: a key is bound to one workspace (``principal.may_use_workspace``) and a user principal
   (a session or a personal key) must also be a member there. Any failure is 404, the same answer as for a
   workspace that does not exist, so other workspaces stay invisible (never 403).
2. **Scope**: the operation's scope (read < write < admin) must be among the credential's scopes
   (403 ``insufficient_scope``). Sessions hold every scope.
3. **Role**: the permission (``app.tenants.permissions``) must be held by the *effective role*
   (``app.apikeys.service.effective_role``): a session's membership role; a service key's scope-implied role
   (read → viewer, write → member, admin → admin); for a personal key the lower of the two.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from starlette.requests import Request

from app.api.errors import ApiError
from app.api.principal import ApiPrincipal, Scope, implied
from app.apikeys.service import effective_role
from app.auth.middleware import signed_in
from app.auth.models import User
from app.db import Database
from app.tenants.context import WorkspaceContext, resolve_workspace
from app.tenants.models import Membership, Workspace
from app.tenants.permissions import can
from app.workspaces.service import SLUG_PATTERN

ALL_SCOPES = implied(Scope.ADMIN)


def authenticate(request: Request) -> ApiPrincipal:
    """The caller, or 401. A Bearer header always wins, and a bad one never falls back to the cookie.

    (The CSRF check skips Bearer requests, so falling back to the session would let a cross-site page
    send ``Authorization: Bearer nonsense`` and ride the victim's cookie.)
    """
    principal: ApiPrincipal | None = getattr(request.state, "api_principal", None)
    if principal is not None:
        return principal
    if request.headers.get("authorization", "").lower().startswith("bearer "):
        raise ApiError(
            401,
            "The API key is not valid (unknown, revoked or expired).",
            code="invalid_api_key",
            headers={"WWW-Authenticate": 'Bearer realm="marid", error="invalid_token"'},
        )
    current = signed_in(request)
    if current is None:
        raise ApiError(401, code="authentication_required", headers={"WWW-Authenticate": 'Bearer realm="marid"'})
    if current.user.email_verified_at is None:
        raise ApiError(403, "Confirm your e-mail address first.", code="email_unverified")
    return ApiPrincipal(kind="session", user=current.user, workspace_id=None, scopes=ALL_SCOPES)


def require_scope(principal: ApiPrincipal, scope: Scope) -> None:
    if not principal.allows(scope):
        raise ApiError(
            403,
            f"This API key lacks the “{scope.value}” scope.",
            code="insufficient_scope",
            details={"required": scope.value, "granted": sorted(held.value for held in principal.scopes)},
            headers={"WWW-Authenticate": f'Bearer realm="marid", error="insufficient_scope", scope="{scope.value}"'},
        )


@dataclass(frozen=True)
class ApiWorkspace:
    """The workspace an operation acts in, and the caller's effective role there."""

    workspace: Workspace
    role: str
    # The member acting (session or personal key); None for a service key.
    membership: Membership | None
    user: User | None

    def can(self, permission: str) -> bool:
        return can(self.role, permission)

    @property
    def context(self) -> WorkspaceContext:
        """The page guards' view of it, for page code the API reuses; only for user principals."""
        if self.user is None or self.membership is None:
            raise ApiError(
                403,
                "Service keys cannot do this; use a personal API key or sign in.",
                code="user_required",
            )
        return WorkspaceContext(workspace=self.workspace, membership=self.membership, user=self.user)


def role_in(principal: ApiPrincipal, workspace_id: str, membership: Membership | None) -> str | None:
    """The role ``principal`` acts with in a workspace (None: no access), by the API-keys rule
    (``app.apikeys.service.effective_role``): a personal key is capped by its scope *and* its owner's role."""
    role = effective_role(principal, workspace_id, membership.role if membership is not None else None)
    return role.value if role is not None else None


async def resolve(request: Request, principal: ApiPrincipal, slug: str) -> ApiWorkspace:
    """The workspace named by ``slug`` as ``principal`` may see it; 404 when it may not (see module doc)."""
    if not SLUG_PATTERN.match(slug):
        raise ApiError(404, "No such workspace.")
    db: Database = request.app.state.db
    membership: Membership | None = None
    async with db.public_session() as session:
        if principal.user is not None:
            context = await resolve_workspace(session, principal.user, slug)
            workspace = context.workspace if context is not None else None
            membership = context.membership if context is not None else None
        else:
            workspace = await session.scalar(select(Workspace).where(Workspace.slug == slug))
    if workspace is None or not principal.may_use_workspace(workspace.id):
        raise ApiError(404, "No such workspace.")
    if principal.user is not None and membership is None:
        raise ApiError(404, "No such workspace.")
    role = role_in(principal, workspace.id, membership)
    if role is None:
        raise ApiError(404, "No such workspace.")
    if workspace.require_2fa and principal.user is not None and not principal.user.has_2fa:
        raise ApiError(
            403,
            "This workspace requires two-factor authentication; turn it on for your account first.",
            code="two_factor_required",
        )
    return ApiWorkspace(workspace=workspace, role=role, membership=membership, user=principal.user)


def require_permission(target: ApiWorkspace, permission: str) -> None:
    if not target.can(permission):
        raise ApiError(
            403,
            "Your role in this workspace does not allow this.",
            code="forbidden",
            details={"required_permission": permission, "role": target.role},
        )
