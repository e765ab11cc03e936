"""Reading forms safely: bounded sizes, strings only, and the client's address for logs and rate limits."""

from __future__ import annotations

from starlette.datastructures import UploadFile
from starlette.requests import Request

from app.security.ratelimit import RateLimiter, RateResult, retry_message

MAX_FIELD_CHARS = 4096


async def read_form(request: Request) -> dict[str, str]:
    """The submitted fields as plain strings (files and oversize values are refused by being dropped)."""
    form = await request.form(max_files=0, max_fields=64)
    values: dict[str, str] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile) or len(value) > MAX_FIELD_CHARS:
            continue
        # PostgreSQL text cannot hold NUL; it is never meaningful in a form field.
        values.setdefault(key.replace("\x00", ""), value.replace("\x00", ""))
    return values


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


__all__ = ["client_ip", "rate_limited", "read_form", "retry_message", "user_agent"]
