"""Authenticates ``Authorization: Bearer marid_...`` API keys, and the scope checks the JSON API uses.

For every request that carries a Bearer credential, :class:`ApiKeyMiddleware` (after the cookie middleware):

* makes sure the request is *not* also signed in by a cookie (``signed_in(request)`` is None for it): a
  Bearer request is exempt from CSRF, so it must never borrow a browser session;
* refuses it with 401 outside ``/api/`` (keys are for the API only), except under ``/llm/``, where the LLM
  gateway checks its own tokens;
* parses the key (shape, checksum), finds it by its lookup id, compares the SHA-256 in constant time, and
  refuses unknown, malformed, revoked and expired keys, and personal keys whose owner is no longer in the
  workspace (checked on every request), with 401 and ``WWW-Authenticate: Bearer error="invalid_token"``;
* counts the request against the key's rate limit (429 with ``Retry-After``);
* stores an :class:`~app.api.principal.ApiPrincipal` in ``request.state.api_principal`` and records when and
  from where the key was last used (at most once a minute per key).

Operations declared with ``app.api.operations.api_route`` check scopes themselves; a plain Starlette route
under ``/api/`` calls :func:`require_scope`. Its refusal, :class:`ApiAuthError`, is rendered as the API's JSON
error body by this middleware (or by any exception handler that calls ``error.response()``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NoReturn

from sqlalchemy import and_, bindparam, or_, select, update
from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Send
from starlette.types import Scope as AsgiScope

from app.apikeys import format as key_format
from app.apikeys.format import KeyKind, MalformedKey
from app.apikeys.models import ApiKey
from app.apikeys.service import key_effective_scope, membership_covers
from app.auth.models import User
from app.auth.principal import ApiPrincipal, Scope, implied
from app.auth.sessions import now
from app.db import Database
from app.db.direct import DirectQuery
from app.db.rows import detached, shape_of
from app.security.ratelimit import Limit, RateLimiter, RateResult
from app.security.tokens import constant_time_equals, token_hash
from app.tenants.context import KEY_WORKSPACE, KeyWorkspace
from app.tenants.models import Membership, Workspace
from app.web.forms import client_ip

# Requests per key and minute by default (a burst of this many, then a steady trickle; see
# app.security.ratelimit); MARID_API_KEY_REQUESTS_PER_MINUTE changes it.
RATE_LIMIT_PER_MINUTE = 600
# Unknown or malformed keys per client address and minute, before even the lookup is refused.
FAILURES_PER_MINUTE = 60
LAST_USED_RESOLUTION = timedelta(minutes=1)
API_PREFIX = "/api/"
# The LLM gateway checks its own Bearer tokens (short-lived step tokens, ``app.llm.tokens``), never API keys.
GATEWAY_PREFIX = "/llm/"
_CHALLENGE = 'Bearer realm="marid", error="invalid_token"'


class ApiAuthError(Exception):
    """A refusal of an API request, rendered as ``{"error": {"code", "message", "details"}}``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        headers: dict[str, str] | None = None,
        details: dict[str, object] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}
        self.details = details or {}

    def response(self) -> Response:
        body = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        headers = {"Cache-Control": "no-store", **self.headers}
        return JSONResponse(body, status_code=self.status, headers=headers)


def _invalid(code: str, message: str) -> ApiAuthError:
    return ApiAuthError(401, code, message, headers={"WWW-Authenticate": _CHALLENGE})


def _too_many(result: RateResult, message: str) -> ApiAuthError:
    return ApiAuthError(
        429,
        "rate_limited",
        f"{message} Try again in {result.retry_after} seconds.",
        headers={"Retry-After": str(result.retry_after)},
        details={"retry_after": result.retry_after},
    )


# --- for route code ------------------------------------------------------------------------------------------


def api_principal(request: Request) -> ApiPrincipal | None:
    """The key principal of a Bearer request (set by the middleware); None for every other request."""
    value: ApiPrincipal | None = getattr(request.state, "api_principal", None)
    return value


def require_scope(request: Request, scope: Scope) -> ApiPrincipal:
    """The request's principal if it holds ``scope``; otherwise raises :class:`ApiAuthError`.

    401 ``authentication_required`` without a principal, 403 ``insufficient_scope`` (with
    ``WWW-Authenticate: Bearer error="insufficient_scope"``, RFC 6750) when it lacks the scope. A read key
    calling a write route gets the 403. Session principals hold every scope.
    """
    principal = api_principal(request)
    if principal is None:
        raise ApiAuthError(
            401,
            "authentication_required",
            "Sign in, or send an API key as “Authorization: Bearer marid_…”.",
            headers={"WWW-Authenticate": 'Bearer realm="marid"'},
        )
    if not principal.allows(scope):
        raise ApiAuthError(
            403,
            "insufficient_scope",
            f"This API key does not have {scope.value} access.",
            headers={"WWW-Authenticate": f'Bearer realm="marid", error="insufficient_scope", scope="{scope.value}"'},
            details={"required": scope.value, "granted": sorted(s.value for s in principal.scopes)},
        )
    return principal


# --- authentication ------------------------------------------------------------------------------------------


@dataclass
class Authenticated:
    principal: ApiPrincipal
    rate: RateResult
    # The key's workspace and its owner's membership, read with the key: resolving the workspace of the call
    # needs no query of its own (``app.tenants.context.access_of_key``).
    target: KeyWorkspace
    headers: dict[str, str] = field(default_factory=dict)


async def authenticate(request: Request, token: str) -> Authenticated:
    """Check a Bearer key; raises :class:`ApiAuthError` (401/429) with the reason when it cannot be used."""
    limiter: RateLimiter = request.app.state.rate_limiter
    ip = client_ip(request)
    try:
        parsed = key_format.parse(token)
    except MalformedKey as malformed:
        await _refuse(limiter, ip, _invalid("invalid_api_key", f"Malformed API key. {malformed}"), failure=True)

    # The key first, then (one Redis round trip) the address's allowance of failures and the key's own rate.
    # Whatever the key, an address over its allowance is answered 429 before anything about the key is told or
    # counted, as when the allowance was looked at first.
    database: Database = request.app.state.db
    async with database.direct() as connection:
        rows = await connection.fetch(_BY_LOOKUP_ID, {"lookup_id": parsed.lookup_id})
    row = rows[0] if rows else None
    presented = token_hash(token)
    if row is None or not constant_time_equals(row[_TOKEN_HASH], presented):
        await _refuse(limiter, ip, _invalid("invalid_api_key", "Unknown API key."), failure=True)
    key, owner, membership, workspace = _loaded(row)
    moment = now()
    refusal = _unusable(key, owner, membership, workspace, moment)
    if refusal is not None:
        await _refuse(limiter, ip, refusal, failure=False)
    scope = key_effective_scope(key, membership.role if membership is not None else None)
    assert scope is not None  # a service key, or a personal key whose owner is a member (checked above)

    per_minute: int = request.app.state.settings.api_key_requests_per_minute
    rate = await limiter.hit_unless(
        Limit(_FAILURES, ip, FAILURES_PER_MINUTE, 60), Limit("apikey", str(key.id), per_minute, 60)
    )
    if not rate.allowed:
        if rate.scope == _FAILURES:
            raise _too_many(rate, "Too many invalid API keys from your address.")
        raise _too_many(rate, "This API key made too many requests.")
    if key.last_used_at is None or moment - key.last_used_at >= LAST_USED_RESOLUTION:
        await _mark_used(database, key, ip)

    principal = ApiPrincipal(
        kind="personal_key" if key.kind == KeyKind.PERSONAL else "service_key",
        user=owner if key.kind == KeyKind.PERSONAL else None,
        workspace_id=key.workspace_id,
        scopes=implied(scope),
        key_id=key.id,
    )
    headers = {"X-RateLimit-Limit": str(per_minute), "X-RateLimit-Remaining": str(rate.remaining)}
    target = KeyWorkspace(workspace, membership if key.kind == KeyKind.PERSONAL else None)
    return Authenticated(principal=principal, rate=rate, target=target, headers=headers)


_FAILURES = "apikey.fail"


async def _refuse(limiter: RateLimiter, ip: str, error: ApiAuthError, *, failure: bool) -> NoReturn:
    """Raise ``error``, or 429 if the address is over its allowance of failures; ``failure`` counts one."""
    failures = await limiter.peek(_FAILURES, ip, limit=FAILURES_PER_MINUTE, window_seconds=60)
    if not failures.allowed:
        raise _too_many(failures, "Too many invalid API keys from your address.")
    if failure:
        await limiter.hit(_FAILURES, ip, limit=FAILURES_PER_MINUTE, window_seconds=60)
    raise error


def _unusable(
    key: ApiKey, owner: User | None, membership: Membership | None, workspace: Workspace, moment: datetime
) -> ApiAuthError | None:
    """Why a genuine key cannot be used now (revoked, expired, its owner out of the workspace or without the
    2FA it requires), or None."""
    if key.revoked_at is not None:
        return _invalid("revoked_api_key", "This API key was revoked.")
    if key.expires_at is not None and key.expires_at <= moment:
        return _invalid("expired_api_key", f"This API key expired on {key.expires_at:%Y-%m-%d %H:%M} UTC.")
    if key.kind == KeyKind.PERSONAL:
        if owner is None or not membership_covers(key, membership):
            return _invalid("invalid_api_key", "The owner of this API key is no longer a member of its workspace.")
        if workspace.require_2fa and not owner.has_2fa:
            return _invalid(
                "invalid_api_key",
                "This workspace requires two-factor authentication, which the key's owner has not turned on.",
            )
    return None


_KEY, _OWNER, _MEMBERSHIP, _WORKSPACE = shape_of(ApiKey), shape_of(User), shape_of(Membership), shape_of(Workspace)
_TOKEN_HASH = _KEY.keys.index("token_hash")
_OWNER_ID = len(_KEY) + _OWNER.keys.index("id")
_MEMBERSHIP_USER = len(_KEY) + len(_OWNER) + _MEMBERSHIP.keys.index("user_id")
# Built once, run on every API request: the key, its owner, the owner's membership and the key's workspace, in
# one statement sent by asyncpg itself (``app.db.direct``; no ORM loading, the objects come back detached,
# ``app.db.rows``).
_BY_LOOKUP_ID = DirectQuery(
    select(*_KEY.columns, *_OWNER.columns, *_MEMBERSHIP.columns, *_WORKSPACE.columns)
    .join_from(ApiKey, Workspace, Workspace.id == ApiKey.workspace_id)
    .outerjoin(User, User.id == ApiKey.user_id)
    .outerjoin(Membership, and_(Membership.workspace_id == ApiKey.workspace_id, Membership.user_id == User.id))
    .where(ApiKey.lookup_id == bindparam("lookup_id"))
)


def _loaded(row: Sequence[Any]) -> tuple[ApiKey, User | None, Membership | None, Workspace]:
    start = len(_KEY) + len(_OWNER)
    owner = detached(_OWNER, row, len(_KEY)) if row[_OWNER_ID] is not None else None
    membership = detached(_MEMBERSHIP, row, start) if row[_MEMBERSHIP_USER] is not None else None
    return detached(_KEY, row), owner, membership, detached(_WORKSPACE, row, start + len(_MEMBERSHIP))


async def _mark_used(database: Database, key: ApiKey, ip: str) -> None:
    # Conditional, so concurrent requests of one key write once, not once each.
    moment = now()
    async with database.public_session() as db:
        await db.execute(
            update(ApiKey)
            .where(
                ApiKey.id == key.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at <= moment - LAST_USED_RESOLUTION),
            )
            .values(last_used_at=moment, last_used_ip=ip[:64])
        )


def bearer_token(scope: AsgiScope) -> str | None:
    """The credential of an ``Authorization: Bearer`` header (scheme matched case-insensitively), else None."""
    for name, value in scope.get("headers", []):
        if name == b"authorization":
            scheme, _, credential = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer":
                return str(credential.strip())
    return None


def is_api_path(path: str) -> bool:
    return path == API_PREFIX.rstrip("/") or path.startswith(API_PREFIX)


class ApiKeyMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        token = bearer_token(scope)
        api = is_api_path(scope["path"])
        if token is None:
            await (self._api(scope, receive, send) if api else self.app(scope, receive, send))
            return
        # A Bearer request never acts through a cookie sent alongside (it skipped the CSRF check).
        state = scope.setdefault("state", {})
        state["signed_in"] = None
        state["api_principal"] = None
        state[KEY_WORKSPACE] = None
        if scope["path"].startswith(GATEWAY_PREFIX):
            await self.app(scope, receive, send)
            return
        if not api:
            refusal = _invalid("invalid_api_key", "API keys are accepted only by the API, under /api/.")
            await refusal.response()(scope, receive, send)
            return
        try:
            authenticated = await authenticate(Request(scope), token)
        except ApiAuthError as refused:
            await refused.response()(scope, receive, send)
            return
        state["api_principal"] = authenticated.principal
        state[KEY_WORKSPACE] = authenticated.target
        await self._api(scope, receive, _with_headers(send, authenticated.headers))

    async def _api(self, scope: AsgiScope, receive: Receive, send: Send) -> None:
        """Run an API route, rendering the :class:`ApiAuthError` it raises (e.g. from require_scope)."""
        started = False

        async def tracking(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking)
        except ApiAuthError as refused:
            if started:
                raise
            await refused.response()(scope, receive, send)


def _with_headers(send: Send, headers: dict[str, str]) -> Send:
    async def sending(message: Message) -> None:
        if message["type"] == "http.response.start":
            response_headers = MutableHeaders(scope=message)
            for name, value in headers.items():
                response_headers.setdefault(name, value)
        await send(message)

    return sending
