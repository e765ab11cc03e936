"""Reading forms safely: bounded sizes, strings only, and the client's address for logs and rate limits."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request

from app.security.ratelimit import RateLimiter, RateResult, retry_message

MAX_FIELD_CHARS = 4096
# Enough for a checkbox per agent of a full workspace (app.agents.service.MAX_AGENTS) and a few more fields.
FORM_MAX_FIELDS = 256


async def read_form(request: Request, *, max_chars: int = MAX_FIELD_CHARS) -> dict[str, str]:
    """The submitted fields as plain strings (files and values over ``max_chars`` are refused by being dropped;
    a form with long text, such as an agent's persona, raises the limit and checks lengths itself)."""
    form = await request.form(max_files=0, max_fields=FORM_MAX_FIELDS)
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile) or len(value) > max_chars:
            continue
        # PostgreSQL text cannot hold NUL; it is never meaningful in a form field.
        values.setdefault(key.replace("\x00", ""), value.replace("\x00", ""))
    return values


async def read_list(request: Request, name: str, *, max_items: int = FORM_MAX_FIELDS) -> list[str]:
    """Every value of a repeated field (checkboxes), as :func:`read_form` reads single ones; ``read_form`` keeps
    only the first of each."""
    form = await request.form(max_files=0, max_fields=FORM_MAX_FIELDS)
    found = [
        value.replace("\x00", "")
        for value in form.getlist(name)
        if not isinstance(value, UploadFile) and len(value) <= MAX_FIELD_CHARS
    ]
    return found[:max_items]


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def user_agent(request: Request) -> str:
    return request.headers.get("user-agent", "")[:400]


async def rate_limited(request: Request, *rules: tuple[str, str, int, int]) -> RateResult | None:
    """Count one hit under each (scope, subject, limit, window_seconds); the first refusal, if any."""
    limiter: RateLimiter = request.app.state.rate_limiter
    for scope, subject, limit, window in rules:
        result = await limiter.hit(scope, subject, limit=limit, window_seconds=window)
        if not result.allowed:
            return result
    return None


__all__ = ["client_ip", "rate_limited", "read_form", "read_list", "retry_message", "user_agent"]
