"""``/me``, ``/me/sessions`` and ``/me/account-events``: the caller, their signed-in browsers (the twin of
/account/sessions) and their account's security log (the list on /account/security).

Sessions and account events are account security, not workspace data: a personal key may list them
(read-only), a service key has no user and may not, and ending a session needs the browser session itself
(403 ``session_required`` for every key), so a leaked key cannot sign its owner out or hide its own tracks.
"""

from __future__ import annotations

import uuid

from pydantic import BaseModel
from starlette.requests import Request
from starlette.responses import Response

from app.account.devices import device_name
from app.account.events import list_account_events, sentence
from app.account.models import AccountEvent
from app.account.service import end_session
from app.api.errors import ApiError
from app.api.operations import Call, api_route
from app.api.pagination import PageQuery, decode_cursor, encode_cursor, envelope, newest_first, paginate
from app.api.principal import Scope
from app.api.schemas import AccountEventList, AccountEventOut, AuthInfo, Me, SessionList, SessionOut, UserOut
from app.auth.middleware import clear_session_cookie, signed_in
from app.auth.models import User, UserSession
from app.auth.principal import effective_role
from app.auth.sessions import list_sessions
from app.tenants.context import person_actor
from app.web.forms import client_ip, user_agent
from app.web.state import db_of, settings_of


def user_out(user: User) -> UserOut:
    return UserOut(
        id=user.id,
        email=user.email,
        display_name=user.display_name,
        email_verified=user.email_verified_at is not None,
        two_factor_enabled=user.has_2fa,
        created_at=user.created_at,
    )


@api_route("GET", "/me", scope=Scope.READ, response=Me, summary="Who is calling", tags=["Account"])
async def get_me(call: Call) -> Me:
    """The signed-in user (null for a service key) and the credential's kind, scopes and workspace."""
    principal = call.principal
    return Me(
        user=user_out(principal.user) if principal.user is not None else None,
        auth=AuthInfo(
            kind=principal.kind,
            scopes=sorted(principal.scopes, key=list(Scope).index),
            workspace_id=principal.workspace_id,
            key_id=principal.key_id,
            acts_as=effective_role(principal) if principal.kind != "session" else None,
        ),
    )


def _current_session_id(request: Request) -> uuid.UUID | None:
    current = signed_in(request)
    return current.session.id if current is not None else None


def _session_out(session: UserSession, current: uuid.UUID | None) -> SessionOut:
    return SessionOut(
        id=session.id,
        device=device_name(session.user_agent),
        ip=session.ip,
        user_agent=session.user_agent,
        created_at=session.created_at,
        last_seen_at=session.last_seen_at,
        expires_at=session.expires_at,
        current=session.id == current,
    )


@api_route(
    "GET",
    "/me/sessions",
    scope=Scope.READ,
    actors="user",
    query=PageQuery,
    response=SessionList,
    summary="List your sessions",
    tags=["Account"],
)
async def list_my_sessions(call: Call) -> BaseModel:
    """Every browser signed in to your account, newest sign-in first."""
    assert call.principal.user is not None
    async with db_of(call.request).public_session() as session:
        sessions = await list_sessions(session, call.principal.user.id)
    current = _current_session_id(call.request) if call.principal.kind == "session" else None
    page = paginate(sessions, lambda s: (newest_first(s.created_at), str(s.id)), (int, str), call.query)
    return envelope(SessionList, page, lambda s: _session_out(s, current))


@api_route(
    "DELETE",
    "/me/sessions/{session_id}",
    scope=Scope.WRITE,
    actors="session",
    summary="Sign a session out",
    tags=["Account"],
)
async def revoke_my_session(call: Call) -> Response | None:
    """Ends the session; its browser's next request is anonymous. Ending your own session signs you out."""
    assert call.principal.user is not None
    session_id, current = call.params["session_id"], _current_session_id(call.request)
    # The sessions page's own service call, with the same account event.
    async with db_of(call.request).public_session() as session:
        ended = await end_session(
            session,
            actor=person_actor(call.principal.user, client_ip(call.request)),
            session_id=session_id,
            current_id=current,
            user_agent=user_agent(call.request),
        )
    if not ended:
        raise ApiError(404, "No such session (it may have ended already).")
    response = Response(status_code=204)
    if session_id == current:
        clear_session_cookie(response, settings_of(call.request))
    return response


def _event_out(event: AccountEvent) -> AccountEventOut:
    return AccountEventOut(
        id=event.id,
        at=event.at,
        action=event.action,
        sentence=sentence(event.action, event.details),
        ip=event.ip,
        user_agent=event.user_agent,
        device=device_name(event.user_agent),
        details=event.details if isinstance(event.details, dict) else {"value": event.details},
    )


@api_route(
    "GET",
    "/me/account-events",
    scope=Scope.READ,
    actors="user",
    query=PageQuery,
    response=AccountEventList,
    summary="Your account's security log",
    tags=["Account"],
)
async def list_my_account_events(call: Call) -> BaseModel:
    """Sign-ins, failed sign-ins, password and 2FA changes of your account, newest first (the security page's
    list). Only you see these; no workspace's audit log holds them."""
    assert call.principal.user is not None
    query: PageQuery = call.query
    before = int(decode_cursor(query.cursor, (int,))[0]) if query.cursor is not None else None
    async with db_of(call.request).public_session() as session:
        events = await list_account_events(session, call.principal.user.id, before=before, limit=query.limit + 1)
    page = events[: query.limit]
    more = len(events) > query.limit
    return AccountEventList(
        data=[_event_out(event) for event in page],
        next_cursor=encode_cursor((page[-1].id,)) if more and page else None,
    )
