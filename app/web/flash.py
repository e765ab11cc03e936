"""One-shot messages carried across a redirect ("Invitation sent"), shown as toasts on the next page."""

from __future__ import annotations

import json

from starlette.requests import Request
from starlette.responses import Response

from app.security.tokens import BadToken, sign, unsign

COOKIE = "marid_flash"
PURPOSE = "flash"
KINDS = ("success", "info", "error")


def flash(request: Request, response: Response, message: str, kind: str = "success") -> None:
    """Queue a toast; works for redirects (cookie) and for htmx responses (``HX-Trigger`` event)."""
    if kind not in KINDS:
        raise ValueError(kind)
    if request.headers.get("HX-Request") == "true" and response.status_code < 300:
        response.headers["HX-Trigger"] = json.dumps({"marid:toast": {"message": message, "kind": kind}})
        return
    secret = request.app.state.settings.secret_key.get_secret_value()
    response.set_cookie(
        COOKIE, sign(secret, PURPOSE, {"m": message[:300], "k": kind}), max_age=60, httponly=True, samesite="lax"
    )


def pop_flash(request: Request) -> list[dict[str, str]]:
    """The queued toast (if any); the caller's response must clear the cookie (``render`` does)."""
    raw = request.cookies.get(COOKIE)
    if not raw:
        return []
    try:
        value = unsign(request.app.state.settings.secret_key.get_secret_value(), PURPOSE, raw, 60)
    except BadToken:
        return []
    if isinstance(value, dict):
        return [{"message": str(value.get("m", "")), "kind": str(value.get("k", "info"))}]
    return []
