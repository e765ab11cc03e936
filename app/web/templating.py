"""Jinja2 with autoescape everywhere (agent output is untrusted) and block rendering for HTMX requests.

One template per page. A normal request gets the whole page; an htmx request gets only the ``content``
block of the same template (or another named block), so every page also works as a full page load.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2_fragments.starlette import Jinja2Blocks
from starlette.requests import Request
from starlette.responses import Response

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"


def _common_context(request: Request) -> dict[str, Any]:
    from app.auth.middleware import signed_in
    from app.web.flash import pop_flash

    current = signed_in(request)
    settings = getattr(request.app.state, "settings", None)
    return {
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "current_user": current.user if current else None,
        "current_workspace": getattr(request.state, "workspace", None),
        "switcher_workspaces": getattr(request.state, "switcher_workspaces", []),
        "toasts": pop_flash(request) if settings is not None else [],
        "dev_mode": settings is not None and not settings.is_production,
    }


# Autoescape is on for every template: agent output and user input are untrusted.
templates = Jinja2Blocks(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=jinja2.StrictUndefined
    ),
    context_processors=[_common_context],
)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str | None = "content",
) -> Response:
    """The whole page normally; only ``block`` of the same template for an htmx request."""
    context = dict(context or {})
    response: Response
    if is_htmx(request) and block is not None:
        response = templates.TemplateResponse(request, name, context, status_code=status_code, block_name=block)
    else:
        response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if "marid_flash" in request.cookies:
        response.delete_cookie("marid_flash")
    # Pages show account data: never cache them (ASVS 14.3.2).
    response.headers.setdefault("Cache-Control", "no-store")
    return response
