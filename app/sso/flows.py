"""Sign-ins in progress: what the callback must check, kept server-side in Redis for ten minutes.

The ``state`` sent to the provider is also put, signed, in a cookie of the browser that started the sign-in.
The callback goes on only if the two match (a sign-in cannot be finished in another browser: login CSRF),
and takes the record out of Redis atomically, so a callback URL works once (no replay of a code or nonce).
The PKCE verifier and the nonce never leave the server.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

from app.config import Settings
from app.security.tokens import BadToken, constant_time_equals, sign, unsign

FLOW_SECONDS = 600
KEY_PREFIX = "marid:sso:flow:"
PURPOSE = "sso-state"


@dataclass(frozen=True)
class PendingSignIn:
    workspace_id: str
    issuer: str
    client_id: str
    redirect_uri: str
    nonce: str
    code_verifier: str
    # The Marid user signed in when the sign-in started, if any: only they may link their account.
    initiator_id: str | None
    # Where to go afterwards (a local path), e.g. the workspace page that asked for this single sign-on.
    next_path: str = ""


def callback_url(settings: Settings) -> str:
    """The redirect URI to register at the provider; byte for byte what Marid sends."""
    return settings.base_url.rstrip("/") + "/sso/callback"


def _key(state: str) -> str:
    return KEY_PREFIX + hashlib.sha256(state.encode()).hexdigest()


async def save(redis: Redis, state: str, flow: PendingSignIn) -> None:
    await redis.set(_key(state), json.dumps(asdict(flow)), ex=FLOW_SECONDS)


async def take(redis: Redis, state: str) -> PendingSignIn | None:
    """The sign-in for ``state``, removed in the same step (a second callback with it finds nothing)."""
    async with redis.pipeline(transaction=True) as pipe:
        pipe.get(_key(state))
        pipe.delete(_key(state))
        raw, _ = await pipe.execute()
    if raw is None:
        return None
    try:
        return PendingSignIn(**json.loads(raw))
    except (TypeError, ValueError):
        return None


def cookie_name(settings: Settings) -> str:
    return "__Host-marid_sso" if settings.is_production else "marid_sso"


def set_state_cookie(response: Response, settings: Settings, state: str) -> None:
    response.set_cookie(
        cookie_name(settings),
        sign(settings.secret_key.get_secret_value(), PURPOSE, state),
        max_age=FLOW_SECONDS,
        path="/",
        httponly=True,
        secure=settings.is_production,
        # Lax: sent on the provider's top-level redirect back to us, not on cross-site subrequests.
        samesite="lax",
    )


def clear_state_cookie(response: Response, settings: Settings) -> None:
    response.delete_cookie(cookie_name(settings), path="/", secure=settings.is_production, httponly=True)


def state_matches_cookie(request: Request, settings: Settings, state: str) -> bool:
    raw = request.cookies.get(cookie_name(settings))
    if not raw or not state:
        return False
    try:
        expected = unsign(settings.secret_key.get_secret_value(), PURPOSE, raw, FLOW_SECONDS)
    except BadToken:
        return False
    return isinstance(expected, str) and constant_time_equals(expected, state)
