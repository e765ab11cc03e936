"""Single sign-on pages: "Continue with SSO" (/sso, also where a workspace that requires single sign-on sends
its members: the step-up), and the provider's redirect back (/sso/callback). The settings pages are in
:mod:`app.sso.pages.settings` and :mod:`app.sso.pages.domains`.

Every outcome of a sign-in, good or bad, goes to the workspace's audit log.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any
from urllib.parse import quote, urlsplit

from sqlalchemy.exc import IntegrityError
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from app.audit.actor import Actor
from app.audit.service import record
from app.auth.middleware import set_session_cookie, signed_in
from app.auth.models import UserSession
from app.auth.pages import safe_next
from app.auth.principal import Principal
from app.auth.sessions import start_session
from app.mail.jobs import deliver_mail
from app.security.crypto import DecryptionError
from app.sso import flows
from app.sso.enforcement import needs_step_up, record_step_up
from app.sso.oidc import OidcError, ProviderClient, authorization_request
from app.sso.pages import domains as domain_pages
from app.sso.pages import settings as settings_pages
from app.sso.service import decrypt_secret, find_connection_for, get_connection
from app.sso.signin import LINK_FIRST_REASONS, complete_sign_in
from app.tenants.context import person_actor, resolve_access
from app.tenants.models import Workspace
from app.web.forms import client_ip, rate_limited, read_form, retry_message, user_agent
from app.web.guards import redirect
from app.web.state import changes, db_of, secrets_of, settings_of
from app.web.templating import render

logger = logging.getLogger("marid.sso")

NOT_FOUND = "No single sign-on is set up for that address or workspace."
START_AGAIN = "This sign-in expired, was already used, or was started in another browser. Start again."


def _provider(request: Request) -> ProviderClient:
    return ProviderClient.for_settings(settings_of(request))


# -- Continue with SSO ---------------------------------------------------------------------------------------


async def _step_up_workspace(request: Request, slug: str) -> Workspace | None:
    """The workspace ``slug`` if it is asking the signed-in member for its single sign-on (else None: nothing
    about a workspace is shown to someone who is not its member)."""
    current = signed_in(request)
    if current is None or not slug:
        return None
    async with db_of(request).public_session() as db:
        access = await resolve_access(db, Principal.session(current.user), slug)
        if access is None:
            return None
        asking = await needs_step_up(
            db, workspace_id=access.workspace.id, role=access.role, session_id=current.session.id
        )
    return access.workspace if asking else None


async def _start_page(
    request: Request,
    identifier: str = "",
    error: str | None = None,
    status_code: int = 200,
    next_path: str = "",
) -> Response:
    current = signed_in(request)
    context = {
        "values": {"identifier": identifier},
        "errors": {"identifier": error} if error else {},
        "signed_in_as": current.user.email if current else None,
        "step_up": await _step_up_workspace(request, identifier),
        "next": next_path,
    }
    return render(request, "sso/start.html", context, status_code=status_code)


def _next_of(raw: str | None) -> str:
    target = safe_next(raw)
    return "" if target == "/" else target


async def start_page(request: Request) -> Response:
    params = request.query_params
    return await _start_page(request, params.get("workspace", "")[:320], next_path=_next_of(params.get("next")))


async def start(request: Request) -> Response:
    form = await read_form(request)
    identifier = form.get("identifier", "").strip()[:320]
    next_path = _next_of(form.get("next"))
    if not identifier:
        message = "Enter your work e-mail address or your workspace's URL name."
        return await _start_page(request, identifier, message, 422, next_path)
    blocked = await rate_limited(request, ("sso.start.ip", client_ip(request), 30, 300))
    if blocked:
        return await _start_page(
            request, identifier, retry_message(blocked, "sign-ins started from your network"), 429, next_path
        )
    async with db_of(request).public_session() as db:
        found = await find_connection_for(db, identifier)
    if found is None:
        return await _start_page(request, identifier, NOT_FOUND, 422, next_path)
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
        metadata, client_id=connection.client_id, redirect_uri=flows.callback_url(settings), login_hint=login_hint
    )
    flow = flows.PendingSignIn(
        workspace_id=workspace.id,
        issuer=connection.issuer,
        client_id=connection.client_id,
        redirect_uri=flows.callback_url(settings),
        nonce=auth.nonce,
        code_verifier=auth.code_verifier,
        initiator_id=str(current.user.id) if current else None,
        next_path=next_path,
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


def _error_page(request: Request, message: str, status_code: int, link_first: str | None = None) -> Response:
    """``link_first``: the workspace slug, when the page should offer "sign in, then link" for it."""
    context: dict[str, Any] = {"message": message, "link_url": None}
    if link_first:
        context["link_url"] = "/login?next=" + quote(f"/sso?workspace={link_first}", safe="")
    response = render(request, "sso/error.html", context, status_code=status_code)
    flows.clear_state_cookie(response, settings_of(request))
    return response


async def _audit_failure(request: Request, workspace_id: str, failure: OidcError, **details: Any) -> None:
    details = {"reason": failure.reason, "error": failure.message[:300], **details}
    async with changes(request) as session:
        record(session, workspace_id, "sso.login_failed", Actor.system(ip=client_ip(request)), details)


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
        slug = None
        if failure.reason in LINK_FIRST_REASONS:
            async with db_of(request).public_session() as db:
                workspace = await db.get(Workspace, flow.workspace_id)
            slug = workspace.slug if workspace else None
        return _error_page(request, failure.message, _status_for(failure.reason), link_first=slug)


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
        secret = await decrypt_secret(secrets_of(request), connection)
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
    """Link or provision as the workspace's policy says; the session (this browser's, if it is the same
    person's, else a new one) then counts as having done this workspace's single sign-on."""
    settings = settings_of(request)
    current = signed_in(request)
    initiator = _initiator(flow, current.user.id if current else None)
    ip = client_ip(request)
    for attempt in (1, 2):
        try:
            async with changes(request) as db:
                connection = await get_connection(db, flow.workspace_id)
                workspace = await db.get(Workspace, flow.workspace_id)
                if connection is None or workspace is None:
                    raise OidcError(
                        "configuration_changed", "Single sign-on for this workspace changed or was turned off."
                    )
                outcome = await complete_sign_in(db, connection=connection, claims=claims, initiator_id=initiator)
                kept = await db.get(UserSession, current.session.id) if current is not None else None
                session_token: str | None = None
                if kept is None or kept.user_id != outcome.user.id or initiator is None:
                    # A new session for this person; this browser's previous one ends (one browser, one session).
                    if kept is not None:
                        await db.delete(kept)
                    session_token, kept = await start_session(
                        db, settings, outcome.user, ip=ip, user_agent=user_agent(request), method="sso"
                    )
                # Otherwise the same person was signed in and started this: a step-up of the same session.
                await record_step_up(
                    db, session_id=kept.id, workspace_id=flow.workspace_id, identity_id=outcome.identity.id
                )
                slug = workspace.slug
                # What happened goes in the workspace's log, in this same transaction.
                actor = person_actor(outcome.user, ip)
                details = {"issuer": flow.issuer, "subject": claims["sub"], "email": claims.get("email")}
                if outcome.created_user or outcome.provisioned:
                    provisioned = {**details, "role": outcome.membership.role, "new_account": outcome.created_user}
                    record(db, flow.workspace_id, "sso.member_provisioned", actor, provisioned)
                if outcome.linked or outcome.created_user:
                    linked = {**details, "existing_account": outcome.linked, "how": outcome.identity.link_method}
                    record(db, flow.workspace_id, "sso.identity_linked", actor, linked)
                record(db, flow.workspace_id, "sso.login", actor, details)
            break
        except IntegrityError:
            # Two first sign-ins of the same person raced (two tabs): the other one created the account,
            # identity or membership; the second attempt finds and uses it.
            if attempt == 2:
                raise
    if outcome.linked or outcome.created_user:
        await request.app.state.jobs.enqueue(deliver_mail)
    response = redirect(request, flow.next_path or f"/w/{slug}")
    if session_token is not None:
        set_session_cookie(response, settings, session_token)
    flows.clear_state_cookie(response, settings)
    return response


def _initiator(flow: flows.PendingSignIn, current: uuid.UUID | None) -> uuid.UUID | None:
    """The user who may link their account: signed in both when the sign-in started and now, as the same user."""
    if flow.initiator_id is None or current is None or str(current) != flow.initiator_id:
        return None
    return current


routes: list[BaseRoute] = [
    Route("/sso", start_page, methods=["GET"]),
    Route("/sso", start, methods=["POST"]),
    Route("/sso/callback", callback, methods=["GET"]),
    *settings_pages.routes,
    *domain_pages.routes,
]
