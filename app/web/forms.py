"""Reading forms safely: bounded sizes, strings only, and the client's address for logs and rate limits."""

from __future__ import annotations

from dataclasses import replace

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


Rule = tuple[str, str, int, int]
"""(scope, subject, limit, window_seconds), e.g. ("login.client", "203.0.113.9", 30, 300)."""


async def rate_limited(request: Request, *rules: Rule) -> RateResult | None:
    """Count one attempt under each rule; the first refusal, if any (then nothing is counted at all).

    Count only real attempts: a wrong password, a code checked, a mail sent. A form refused for what was typed
    (an empty field, a weak new password, a malformed address) is checked *before* this, or the attempt is given
    back with :func:`give_back`, so typos never lock anyone out. Counting comes before the check itself, so
    parallel requests cannot slip past a limit; a check that succeeds may give its attempt back too.
    """
    limiter: RateLimiter = request.app.state.rate_limiter
    counted: list[Rule] = []
    for rule in rules:
        scope, subject, limit, window = rule
        result = await limiter.hit(scope, subject, limit=limit, window_seconds=window)
        if not result.allowed:
            await give_back(request, *counted)
            return replace(result, scope=scope)
        counted.append(rule)
    return None


async def give_back(request: Request, *rules: Rule) -> None:
    """Un-count an attempt made with :func:`rate_limited` under the same rules: it was not a real one after all
    (the form was refused as invalid), or it succeeded and only failures add up."""
    limiter: RateLimiter = request.app.state.rate_limiter
    for scope, subject, limit, window in rules:
        await limiter.refund(scope, subject, limit=limit, window_seconds=window)


__all__ = ["Rule", "client_ip", "give_back", "rate_limited", "read_form", "read_list", "retry_message", "user_agent"]
