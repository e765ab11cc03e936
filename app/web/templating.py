"""Jinja2 with autoescape everywhere (agent output is untrusted) and block rendering for HTMX requests.

One template per page. A normal request gets the whole page; an htmx request gets only the ``content``
block of the same template (or another named block), so every page also works as a full page load.
"""

from __future__ import annotations

import hashlib
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.templating import Jinja2Templates

from app.security.tokens import new_token
from app.web.timezones import localtime, utc, zone_label, zone_of

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"
STATIC_DIR = TEMPLATE_DIR.parent / "static"


@lru_cache(maxsize=64)
def static_url(path: str) -> str:
    """``/static/<path>?v=<content hash>``: a fixed address per file version (so it can be cached for long).

    Starlette's ``url_for('static', ...)`` searches the route table on every call; a page calls it five times,
    which measured 15% of a dashboard request's time.
    """
    relative = path.lstrip("/")
    file = (STATIC_DIR / relative).resolve()
    if STATIC_DIR not in file.parents or not file.is_file():
        raise ValueError(f"no static file {path!r}")
    version = hashlib.sha256(file.read_bytes()).hexdigest()[:12]
    return f"/static/{relative}?v={version}"


def _common_context(request: Request) -> dict[str, Any]:
    from app.auth.middleware import signed_in
    from app.web.flash import pop_flash

    current = signed_in(request)
    settings = getattr(request.app.state, "settings", None)
    zone = zone_of(request, current.user.time_zone if current else "")
    return {
        # Times are shown in the reader's zone (the ``localtime`` filter reads it).
        "time_zone": zone,
        "time_zone_label": zone_label(zone),
        "csrf_token": getattr(request.state, "csrf_token", ""),
        "current_user": current.user if current else None,
        "current_workspace": getattr(request.state, "workspace", None),
        "switcher_workspaces": getattr(request.state, "switcher_workspaces", []),
        "toasts": pop_flash(request) if settings is not None else [],
        # Links to the dev mailbox, shown only where it is mounted.
        "dev_mode": settings is not None and settings.dev_routes_enabled,
    }


# Autoescape is on for every template: agent output and user input are untrusted.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, undefined=jinja2.StrictUndefined
    ),
    context_processors=[_common_context],
)
templates.env.globals["static_url"] = static_url
# A fresh idempotency token for a create form (``once()`` in components/forms.html; app.web.idempotency).
templates.env.globals["form_token"] = lambda: new_token(16)
templates.env.filters["localtime"] = localtime
templates.env.filters["utc"] = utc


_IMPORT = re.compile(r'{%-?\s*from\s+"([^"]+)"\s+import\s+([\w\s,]+?)(\s+with\s+context)?\s*-?%}')


@lru_cache(maxsize=256)
def _imports(name: str) -> tuple[tuple[str, tuple[str, ...], bool], ...]:
    """The ``{% from "x" import a, b [with context] %}`` lines of a template (macros used by its blocks), and
    whether each is imported with the page's context (macros that read ``csrf_token`` and the like need it; the
    others share one module, made once, instead of one per render)."""
    source, _, _ = templates.env.loader.get_source(templates.env, name)  # type: ignore[union-attr]
    return tuple(
        (module, tuple(part.strip() for part in names.split(",") if part.strip()), bool(with_context))
        for module, names, with_context in _IMPORT.findall(source)
    )


def render_block(request: Request, name: str, block: str, context: dict[str, Any]) -> str:
    """One block of a template, with the macros the template imports at its top level.

    Rendering a block alone skips the template's top-level code, so its ``{% from ... import ... %}`` lines
    never run and a block that calls an imported macro would fail; import them here, in the same context.
    """
    values = {"request": request, **_common_context(request), **context}
    template = templates.env.get_template(name)
    for module_name, names, with_context in _imports(name):
        imported = templates.env.get_template(module_name)
        module = imported.make_module(values) if with_context else imported.module
        for macro in names:
            values[macro] = getattr(module, macro)
    return "".join(template.blocks[block](template.new_context(values)))


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
        response = HTMLResponse(render_block(request, name, block, context), status_code=status_code)
    else:
        response = templates.TemplateResponse(request, name, context, status_code=status_code)
    if "marid_flash" in request.cookies:
        response.delete_cookie("marid_flash")
    # Pages show account data: never cache them (ASVS 14.3.2).
    response.headers.setdefault("Cache-Control", "no-store")
    return response
