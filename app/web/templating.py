"""Jinja2 with autoescape everywhere (agent output is untrusted) and block rendering for HTMX requests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from jinja2_fragments.starlette import Jinja2Blocks
from starlette.requests import Request
from starlette.responses import Response

TEMPLATE_DIR = Path(__file__).resolve().parent.parent / "templates"

# Autoescape is on for every template: agent output and user input are untrusted.
templates = Jinja2Blocks(
    env=jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATE_DIR), autoescape=True, enable_async=False)
)


def is_htmx(request: Request) -> bool:
    return request.headers.get("HX-Request") == "true" and request.headers.get("HX-Boosted") != "true"


def render(
    request: Request,
    name: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    block: str = "content",
) -> Response:
    """The whole page normally; only ``block`` of the same template for an HTMX request."""
    context = dict(context or {})
    response: Response
    if is_htmx(request):
        response = templates.TemplateResponse(request, name, context, status_code=status_code, block_name=block)
    else:
        response = templates.TemplateResponse(request, name, context, status_code=status_code)
    return response
