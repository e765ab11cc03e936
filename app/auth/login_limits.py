"""How many wrong passwords the sign-in form takes, and from whom.

Failures are limited per (account, client) and per client, never per account alone: a per-account limit
also refuses the right password, so anyone who knows an address could keep its owner out by hammering the
form. Here the hammering client is stopped (for that account, and for every account once it has failed often
enough), while the owner's own client still signs in.

Each attempt is counted *before* the password is checked (so parallel requests cannot slip past the limit),
and a right password gives its hit back: only failures add up, and an office of people signing in from one
address is never refused.
"""

from __future__ import annotations

from app.security.ratelimit import RateLimiter

# (scope, limit, window in seconds)
PER_CLIENT = ("login.client", 30, 300)
PER_ACCOUNT_CLIENT = ("login.account_client", 10, 900)


def _account_client(email: str, client: str) -> str:
    return f"{email or '-'}\n{client}"


def login_rules(email: str, client: str) -> tuple[tuple[str, str, int, int], ...]:
    """The rules for ``app.web.forms.rate_limited``: per client first, then per (account, client)."""
    scope, limit, window = PER_CLIENT
    pair_scope, pair_limit, pair_window = PER_ACCOUNT_CLIENT
    return ((scope, client, limit, window), (pair_scope, _account_client(email, client), pair_limit, pair_window))


async def forgive(limiter: RateLimiter, email: str, client: str) -> None:
    """The password was right: this attempt does not count, and this client's failures for the account end."""
    scope, limit, window = PER_CLIENT
    await limiter.refund(scope, client, limit=limit, window_seconds=window)
    await limiter.reset(PER_ACCOUNT_CLIENT[0], _account_client(email, client))


async def forget_failures(limiter: RateLimiter, email: str, client: str) -> None:
    """A password reset from this client proved who it is: its failures for the account end."""
    await limiter.reset(PER_ACCOUNT_CLIENT[0], _account_client(email, client))
