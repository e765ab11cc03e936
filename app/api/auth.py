"""Who is calling (an API key or the browser session), which workspace they act in, and with what role.

Three checks, all of which must pass, in this order:

1. **Workspace**: a key is bound to one workspace (``principal.may_use_workspace``) and a user principal
   (a session or a personal key) must also be a member there. Any failure is 404, the same answer as for a
   workspace that does not exist, so other workspaces stay invisible (never 403).
2. **Scope**: the operation's scope (read < write < admin) must be among the credential's scopes
   (403 ``insufficient_scope``). Sessions hold every scope.
3. **Role**: the permission (``app.tenants.permissions``) must be held by the *effective role*
   (``app.auth.principal.effective_role``, resolved by ``app.tenants.context``): a session's membership role;
   a service key's scope-implied role (read → viewer, write → member, admin → admin); for a personal key the
   lower of the two.
"""

from __future__ import annotations

from starlette.requests import Request

from app.api.errors import ApiError
from app.api.principal import ApiPrincipal, Scope
from app.auth.middleware import signed_in
from app.sso.enforcement import needs_step_up
from app.tenants.context import (
    KEY_WORKSPACE,
    KeyWorkspace,
    WorkspaceAccess,
    access_from,
    access_of_key,
    resolve_access,
)
from app.web.forms import client_ip
from app.web.state import db_of


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
    return ApiPrincipal.session(current.user)


def require_scope(principal: ApiPrincipal, scope: Scope) -> None:
    if not principal.allows(scope):
        raise ApiError(
            403,
            f"This API key lacks the “{scope.value}” scope.",
            code="insufficient_scope",
            details={"required": scope.value, "granted": sorted(held.value for held in principal.scopes)},
            headers={"WWW-Authenticate": f'Bearer realm="marid", error="insufficient_scope", scope="{scope.value}"'},
        )


async def resolve(request: Request, principal: ApiPrincipal, slug: str) -> WorkspaceAccess:
    """The workspace named by ``slug`` as ``principal`` may see it (``app.tenants.context``); 404 when it may not."""
    current = signed_in(request) if principal.kind == "session" else None
    loaded: KeyWorkspace | None = getattr(request.state, KEY_WORKSPACE, None)
    step_up = False
    if current is not None:
        # What the authentication middleware loaded with the session, as the pages' guard reads it.
        access = access_from(current.memberships, principal, slug, ip=client_ip(request))
        # A browser session owes a workspace that requires single sign-on its step-up, as its pages do; keys are
        # made by someone who was let in and carry their own checks.
        if access is not None and any(
            entry.requires_sso for entry in current.memberships if entry.workspace.id == access.workspace.id
        ):
            async with db_of(request).public_session() as session:
                step_up = await needs_step_up(
                    session, workspace_id=access.workspace.id, role=access.role, session_id=current.session.id
                )
    elif loaded is not None and principal.kind != "session":
        # The key lookup of this request read the key's workspace and its owner's membership.
        access = access_of_key(loaded, principal, slug, ip=client_ip(request))
    else:
        async with db_of(request).public_session() as session:
            access = await resolve_access(session, principal, slug, ip=client_ip(request))
    if access is None:
        raise ApiError(404, "No such workspace.")
    if step_up:
        raise ApiError(
            403,
            "This workspace requires its single sign-on; continue with SSO in the browser first.",
            code="sso_required",
        )
    if access.needs_2fa:
        raise ApiError(
            403,
            "This workspace requires two-factor authentication; turn it on for your account first.",
            code="two_factor_required",
        )
    return access


def require_permission(target: WorkspaceAccess, permission: str) -> None:
    if not target.can(permission):
        raise ApiError(
            403,
            "Your role in this workspace does not allow this.",
            code="forbidden",
            details={"required_permission": permission, "role": target.role},
        )
