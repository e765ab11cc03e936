"""A create that arrives twice creates once: every create form carries a one-time token, accepted once.

A double click, a browser retrying a POST over a flaky connection, or a reload of the page a POST answered
would otherwise make two invitations, two keys, two agents. The form renders ``{{ once() }}``
(``components/forms.html``: a hidden ``form_id`` with a fresh token) and its handler wraps the create::

    @workspace_required("workspace.work")
    async def create_agent(request: Request, context: WorkspaceContext) -> Response:
        form = await read_form(request)
        return await submit_once(request, form, scope=f"agents:{context.workspace.id}", act=lambda: _create(...))

The first arrival of a token runs ``act``. A second arrival of the same token while the first is still running
waits for it (a few seconds at most); then, if the first ended in a redirect (the usual answer to a create),
the second gets the same redirect with a note that it was done once, so the browser shows the result whichever
response it kept. An answer of 400 or more releases the token: a corrected form goes through. Forms without a
token (scripts, the JSON API, which has its own ids) are not affected.

Tokens are remembered in Redis for a day, per ``scope`` (name the workspace or person in it), hashed.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Awaitable, Callable

from redis.asyncio import Redis
from starlette.requests import Request
from starlette.responses import Response

from app.web.errors import error_response
from app.web.flash import flash
from app.web.guards import redirect

FIELD = "form_id"
REMEMBER_SECONDS = 24 * 3600
# How long a second arrival waits for the first to finish (a create is a few database writes).
WAIT_SECONDS = 8.0
_PENDING = "pending"
DONE_ONCE = "That form was sent twice; it was done once."

Act = Callable[[], Awaitable[Response]]


def _key(scope: str, token: str) -> str:
    return f"marid:once:{scope}:{hashlib.sha256(token.encode()).hexdigest()[:32]}"


def _redis(request: Request) -> Redis:
    redis: Redis = request.app.state.redis
    return redis


def _location(response: Response) -> str | None:
    return response.headers.get("location") or response.headers.get("hx-redirect")


async def claim(request: Request, scope: str, token: str) -> bool:
    """True for the first arrival of ``token`` in ``scope`` (then :func:`finish` or :func:`release` it)."""
    return bool(await _redis(request).set(_key(scope, token), _PENDING, nx=True, ex=REMEMBER_SECONDS))


async def finish(request: Request, scope: str, token: str, response: Response) -> None:
    """Remember how the first arrival ended, for a second one to answer the same."""
    outcome = json.dumps({"status": response.status_code, "location": _location(response)})
    await _redis(request).set(_key(scope, token), outcome, ex=REMEMBER_SECONDS)


async def release(request: Request, scope: str, token: str) -> None:
    """Forget the token: the form was refused, so sending it again (corrected) must go through."""
    await _redis(request).delete(_key(scope, token))


async def outcome(request: Request, scope: str, token: str) -> dict[str, object] | None:
    """How the first arrival ended, waiting for it while it runs; None if it never finished (or was released)."""
    redis = _redis(request)
    deadline = asyncio.get_running_loop().time() + WAIT_SECONDS
    while True:
        raw = await redis.get(_key(scope, token))
        if raw is None:
            return None
        text = raw.decode() if isinstance(raw, bytes) else str(raw)
        if text != _PENDING:
            found = json.loads(text)
            return found if isinstance(found, dict) else None
        if asyncio.get_running_loop().time() > deadline:
            return None
        await asyncio.sleep(0.05)


async def submit_once(
    request: Request,
    form: dict[str, str],
    *,
    scope: str,
    act: Act,
    duplicate: Act | None = None,
    _retry: bool = True,
) -> Response:
    """Run ``act`` once per form token (see the module docstring).

    ``duplicate`` answers a second arrival whose first did not end in a redirect (a page shown once, like a new
    API key's); by default, and when the first was a redirect, the second is sent where the first went.
    """
    token = form.get(FIELD, "").strip()[:128]
    if not token:
        return await act()
    if await claim(request, scope, token):
        try:
            response = await act()
        except BaseException:
            await release(request, scope, token)
            raise
        if response.status_code >= 400:
            await release(request, scope, token)
        else:
            await finish(request, scope, token, response)
        return response
    first = await outcome(request, scope, token)
    location = first.get("location") if first else None
    if isinstance(location, str) and location:
        again = redirect(request, location)
        flash(request, again, DONE_ONCE, "info")
        return again
    if duplicate is not None:
        return await duplicate()
    if first is None:
        if _retry:
            # The first arrival was refused or failed meanwhile: this one may try (it claims the token anew).
            return await submit_once(request, form, scope=scope, act=act, duplicate=duplicate, _retry=False)
        return error_response(request, 409, "This form is still being handled. Reload the page in a moment to see it.")
    again = redirect(request, request.url.path)
    flash(request, again, DONE_ONCE, "info")
    return again
