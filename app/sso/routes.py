"""Single sign-on pages: "Continue with SSO" (/sso), the provider's redirect back (/sso/callback), and the
workspace admin's settings page (/w/<slug>/settings/sso, with "Test connection").

Every outcome of a sign-in, good or bad, goes to the workspace's audit log.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.audit.service import record
from app.auth.middleware import set_session_cookie, signed_in
from app.auth.models import UserSession
from app.auth.sessions import start_session
from app.config import Settings
from app.security.crypto import DecryptionError
from app.sso import flows
from app.sso.models import SsoConnection
from app.sso.oidc import OidcError, ProviderClient, authorization_request
from app.sso.service import (
    ASSIGNABLE_ROLES,
    AmbiguousDomain,
    SsoConfigError,
    complete_sign_in,
    decrypt_secret,
    end_password_sessions,
    find_connection_for,
    get_connection,
    record_test,
    save_connection,
)
from app.tenants.context import WorkspaceContext
from app.tenants.models import Workspace
from app.web.flash import flash
from app.web.forms import client_ip, rate_limited, read_form, retry_message, user_agent
from app.web.guards import redirect, workspace_required
from app.web.state import db_of, settings_of
from app.web.templating import is_htmx, render

logger = logging.getLogger("marid.sso")

NOT_FOUND = "No single sign-on is set up for that address or workspace."
AMBIGUOUS = "Several workspaces use single sign-on for that domain. Enter your workspace's URL name instead."
START_AGAIN = "This sign-in expired, was already used, or was started in another browser. Start again."


def _provider(request: Request) -> ProviderClient:
    return ProviderClient.for_settings(settings_of(request))


def callback_url(settings: Settings) -> str:
    """The redirect URI to register at the provider; byte for byte what Marid sends."""
    return settings.base_url.rstrip("/") + "/sso/callback"


# -- Continue with SSO ---------------------------------------------------------------------------------------


def _start_page(request: Request, identifier: str = "", error: str | None = None, status_code: int = 200) -> Response:
    current = signed_in(request)
    context = {
        "values": {"identifier": identifier},
        "errors": {"identifier": error} if error else {},
        "signed_in_as": current.user.email if current else None,
    }
    return render(request, "sso/start.html", context, status_code=status_code)


async def start_page(request: Request) -> Response:
    return _start_page(request, request.query_params.get("workspace", "")[:320])


async def start(request: Request) -> Response:
    form = await read_form(request)
    identifier = form.get("identifier", "").strip()[:320]
    blocked = await rate_limited(request, ("sso.start.ip", client_ip(request), 30, 300))
    if blocked:
        return _start_page(request, identifier, retry_message(blocked), 429)
    if not identifier:
        return _start_page(request, identifier, "Enter your work e-mail address or your workspace's URL name.", 422)
    try:
        async with db_of(request).public_session() as db:
            found = await find_connection_for(db, identifier)
    except AmbiguousDomain:
        return _start_page(request, identifier, AMBIGUOUS, 422)
    if found is None:
        return _start_page(request, identifier, NOT_FOUND, 422)
    workspace, connection = found
    settings = settings_of(request)
    try:
        metadata = await _provider(request).discover(connection.issuer)
    except OidcError as failure:
        await _audit_failure(request, workspace.id, failure, issuer=connection.issuer)
        message = "The identity provider of this workspace cannot be reached right now. Try again in a minute."
        return _error_page(request, message, 502)
    current = signed_in(request)
    login_hint = identifier if "@" in identifier else None
    auth = authorization_request(
        metadata, client_id=connection.client_id, redirect_uri=callback_url(settings), login_hint=login_hint
    )
    flow = flows.PendingSignIn(
        workspace_id=workspace.id,
        issuer=connection.issuer,
        client_id=connection.client_id,
        redirect_uri=callback_url(settings),
        nonce=auth.nonce,
        code_verifier=auth.code_verifier,
        initiator_id=str(current.user.id) if current else None,
    )
    await flows.save(request.app.state.redis, auth.state, flow)
    # Not a 303: the CSP's form-action 'self' also covers where a form submission is redirected, so the
    # browser would refuse to follow a redirect to the provider. The Refresh header starts a new navigation.
    provider_host = urlsplit(metadata.authorization_endpoint).netloc
    response = render(request, "sso/redirect.html", {"url": auth.url, "provider": provider_host})
    response.headers["Refresh"] = f"0;url={auth.url}"
    response.headers["Referrer-Policy"] = "no-referrer"
    flows.set_state_cookie(response, settings, auth.state)
    return response


def _error_page(request: Request, message: str, status_code: int) -> Response:
    response = render(request, "sso/error.html", {"message": message}, status_code=status_code)
    flows.clear_state_cookie(response, settings_of(request))
    return response


async def _audit_failure(request: Request, workspace_id: str, failure: OidcError, **details: Any) -> None:
    details = {"reason": failure.reason, "error": failure.message[:300], **details}
    await record(
        db_of(request), workspace_id, "sso.login_failed", actor_id=None, ip=client_ip(request), details=details
    )


async def callback(request: Request) -> Response:
    settings = settings_of(request)
    state = request.query_params.get("state", "")
    if not flows.state_matches_cookie(request, settings, state):
        logger.info("sso callback without a matching state cookie from %s", client_ip(request))
        return _error_page(request, START_AGAIN, 400)
    flow = await flows.take(request.app.state.redis, state)
    if flow is None:
        return _error_page(request, START_AGAIN, 400)
    try:
        claims = await _verified_claims(request, flow)
        return await _sign_in(request, flow, claims)
    except OidcError as failure:
        await _audit_failure(request, flow.workspace_id, failure, issuer=flow.issuer)
        return _error_page(request, failure.message, _status_for(failure.reason))


# Failures of the provider (or of reaching it) are 502; refused responses and tokens 401; refusals by policy 403.
_PROVIDER_FAULTS = frozenset({"timeout", "unreachable", "http_error", "bad_document", "too_large", "token_error"})
_REFUSED = frozenset({"provider_error", "invalid_id_token", "no_code", "issuer_mismatch", "no_id_token"})


def _status_for(reason: str) -> int:
    if reason in _PROVIDER_FAULTS:
        return 502
    return 401 if reason in _REFUSED else 403


async def _verified_claims(request: Request, flow: flows.PendingSignIn) -> dict[str, Any]:
    """The provider's answer checked end to end: its iss, the code exchanged, the ID token validated."""
    params = request.query_params
    if "error" in params:
        error, description = params.get("error", "")[:60], params.get("error_description", "")[:200]
        detail = f"{error}: {description}" if description else error
        raise OidcError("provider_error", f"Your identity provider did not sign you in ({detail}).")
    code = params.get("code", "")
    if not code:
        raise OidcError("no_code", "The identity provider sent no authorization code.")
    async with db_of(request).public_session() as db:
        connection = await get_connection(db, flow.workspace_id)
    if connection is None or not connection.enabled or connection.issuer != flow.issuer:
        raise OidcError("configuration_changed", "Single sign-on for this workspace changed or was turned off.")
    if connection.client_id != flow.client_id:
        raise OidcError("configuration_changed", "Single sign-on for this workspace changed or was turned off.")
    provider = _provider(request)
    metadata = await provider.discover(flow.issuer)
    # RFC 9207: the response names the provider that sent it; another one means an IdP mix-up attack.
    iss = params.get("iss")
    if (iss is not None and iss != flow.issuer) or (iss is None and metadata.sends_iss_in_response):
        raise OidcError("issuer_mismatch", "The sign-in response did not come from this workspace's provider.")
    try:
        secret = decrypt_secret(settings_of(request), connection)
    except DecryptionError as error:
        message = "The client secret cannot be read; ask an admin to enter it again."
        raise OidcError("secret_unreadable", message) from error
    token = await provider.exchange_code(
        metadata,
        client_id=flow.client_id,
        client_secret=secret,
        code=code,
        redirect_uri=flow.redirect_uri,
        code_verifier=flow.code_verifier,
    )
    access_token = token.get("access_token") if isinstance(token.get("access_token"), str) else None
    claims = await provider.validate_id_token(
        metadata, token["id_token"], client_id=flow.client_id, nonce=flow.nonce, access_token=access_token
    )
    if "email" not in claims and access_token:
        info = await provider.userinfo(metadata, access_token)
        # Userinfo counts only for the subject the ID token is about (OIDC Core 5.3.2).
        if info.get("sub") == claims["sub"]:
            claims |= {key: info[key] for key in ("email", "email_verified", "name") if key in info}
    return claims


async def _sign_in(request: Request, flow: flows.PendingSignIn, claims: dict[str, Any]) -> Response:
    """Link or provision as the workspace's policy says, then a new Marid session for this browser."""
    settings = settings_of(request)
    current = signed_in(request)
    initiator = _initiator(flow, current.user.id if current else None)
    for attempt in (1, 2):
        try:
            async with db_of(request).public_session() as db:
                connection = await get_connection(db, flow.workspace_id)
                workspace = await db.get(Workspace, flow.workspace_id)
                if connection is None or workspace is None:
                    raise OidcError(
                        "configuration_changed", "Single sign-on for this workspace changed or was turned off."
                    )
                outcome = await complete_sign_in(db, connection=connection, claims=claims, initiator_id=initiator)
                session_token, _ = await start_session(
                    db, settings, outcome.user, ip=client_ip(request), user_agent=user_agent(request), method="sso"
                )
                if current is not None:
                    # This browser's previous session ends: one browser, one session.
                    old = await db.get(UserSession, current.session.id)
                    if old is not None:
                        await db.delete(old)
                user_id, role, slug = outcome.user.id, outcome.membership.role, workspace.slug
            break
        except IntegrityError:
            # Two first sign-ins of the same person raced (two tabs): the other one created the account,
            # identity or membership; the second attempt finds and uses it.
            if attempt == 2:
                raise
    details = {"issuer": flow.issuer, "subject": claims["sub"], "email": claims.get("email")}
    ip, database = client_ip(request), db_of(request)
    if outcome.created_user or outcome.provisioned:
        provisioned = {**details, "role": role, "new_account": outcome.created_user}
        await record(
            database, flow.workspace_id, "sso.member_provisioned", actor_id=user_id, ip=ip, details=provisioned
        )
    if outcome.linked or outcome.created_user:
        linked = {**details, "existing_account": outcome.linked}
        await record(database, flow.workspace_id, "sso.identity_linked", actor_id=user_id, ip=ip, details=linked)
    await record(database, flow.workspace_id, "sso.login", actor_id=user_id, ip=ip, details=details)
    response = redirect(request, f"/w/{slug}")
    set_session_cookie(response, settings, session_token)
    flows.clear_state_cookie(response, settings)
    return response


def _initiator(flow: flows.PendingSignIn, current: uuid.UUID | None) -> uuid.UUID | None:
    """The user who may link their account: signed in both when the sign-in started and now, as the same user."""
    if flow.initiator_id is None or current is None or str(current) != flow.initiator_id:
        return None
    return current


# -- Settings page -------------------------------------------------------------------------------------------


def _settings_context(
    request: Request,
    connection: SsoConnection | None,
    *,
    values: dict[str, Any] | None = None,
    errors: dict[str, str] | None = None,
    test: dict[str, Any] | None = None,
) -> dict[str, Any]:
    if values is None:
        values = {
            "issuer": connection.issuer if connection else "",
            "client_id": connection.client_id if connection else "",
            "allowed_domains": ", ".join(connection.allowed_domains) if connection else "",
            "default_role": connection.default_role if connection else "member",
            "enabled": connection.enabled if connection else False,
            "enforce_sso": connection.enforce_sso if connection else False,
        }
    return {
        "connection": connection,
        "values": values,
        "errors": errors or {},
        "roles": ASSIGNABLE_ROLES,
        "callback_url": callback_url(settings_of(request)),
        "test": test,
    }


@workspace_required("settings.edit")
async def settings_page(request: Request, context: WorkspaceContext) -> Response:
    async with db_of(request).public_session() as db:
        connection = await get_connection(db, context.workspace.id)
    return render(request, "sso/settings.html", _settings_context(request, connection))


@workspace_required("settings.edit")
async def save_settings(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    workspace_id = context.workspace.id
    try:
        async with db_of(request).public_session() as db:
            connection, changes = await save_connection(db, settings_of(request), workspace_id=workspace_id, form=form)
    except SsoConfigError as invalid:
        async with db_of(request).public_session() as db:
            current = await get_connection(db, workspace_id)
        text_fields = ("issuer", "client_id", "allowed_domains", "default_role")
        values: dict[str, Any] = {key: form.get(key, "") for key in text_fields}
        values |= {"enabled": form.get("enabled") == "on", "enforce_sso": form.get("enforce_sso") == "on"}
        page = _settings_context(request, current, values=values, errors=invalid.errors)
        return render(request, "sso/settings.html", page, status_code=422)
    ip, actor = client_ip(request), context.user.id
    if changes:
        await record(
            db_of(request), workspace_id, "sso.configured", actor_id=actor, ip=ip, details={"changes": changes}
        )
    if "enforce_sso" in changes:
        enforced: dict[str, Any] = {"enforce_sso": connection.enforce_sso}
        if connection.enforce_sso:
            # Requiring SSO from now on also ends the password sessions members already have.
            async with db_of(request).public_session() as db:
                enforced["password_sessions_ended"] = await end_password_sessions(db, workspace_id)
        await record(db_of(request), workspace_id, "sso.enforced_changed", actor_id=actor, ip=ip, details=enforced)
    response = redirect(request, f"/w/{context.workspace.slug}/settings/sso")
    flash(request, response, "Single sign-on settings saved." if changes else "Nothing changed.")
    return response


@workspace_required("settings.edit")
async def test_connection(request: Request, context: WorkspaceContext) -> Response:
    form = await read_form(request)
    workspace_id = context.workspace.id
    async with db_of(request).public_session() as db:
        connection = await get_connection(db, workspace_id)
    issuer = form.get("issuer", "").strip() or (connection.issuer if connection else "")
    blocked = await rate_limited(request, ("sso.test", workspace_id, 20, 300))
    if blocked:
        test: dict[str, Any] = {"ok": False, "issuer": issuer, "message": retry_message(blocked)}
    elif not issuer:
        test = {"ok": False, "issuer": issuer, "message": "Enter the provider's issuer URL first."}
    else:
        test = await _run_test(request, issuer)
        async with db_of(request).public_session() as db:
            test["saved"] = await record_test(
                db, workspace_id, issuer=issuer, ok=test["ok"], error=None if test["ok"] else test["message"]
            )
        details = {"issuer": issuer, "ok": test["ok"], "error": None if test["ok"] else test["message"]}
        await record(
            db_of(request), workspace_id, "sso.tested", actor_id=context.user.id, ip=client_ip(request), details=details
        )
    if is_htmx(request):
        return render(request, "sso/settings.html", {"test": test}, block="test_result")
    async with db_of(request).public_session() as db:
        connection = await get_connection(db, workspace_id)
    return render(request, "sso/settings.html", _settings_context(request, connection, test=test))


async def _run_test(request: Request, issuer: str) -> dict[str, Any]:
    """Discovery and the key set, fetched fresh: what an admin needs to know before turning SSO on."""
    provider = _provider(request)
    try:
        metadata = await provider.discover(issuer, fresh=True)
        keys = await provider.keys(metadata, fresh=True)
    except OidcError as failure:
        return {"ok": False, "issuer": issuer, "message": failure.message}
    count = len(keys.keys)
    message = (
        f"Discovery works: {metadata.issuer} offers the authorization-code flow with PKCE and publishes "
        f"{count} signing key{'' if count == 1 else 's'}."
    )
    return {"ok": True, "issuer": issuer, "message": message}


routes: list[BaseRoute] = [
    Route("/sso", start_page, methods=["GET"]),
    Route("/sso", start, methods=["POST"]),
    Route("/sso/callback", callback, methods=["GET"]),
    Route("/w/{slug}/settings/sso", settings_page, methods=["GET"]),
    Route("/w/{slug}/settings/sso", save_settings, methods=["POST"]),
    Route("/w/{slug}/settings/sso/test", test_connection, methods=["POST"]),
]
