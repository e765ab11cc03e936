"""Rate limits in Redis with GCRA (the generic cell rate algorithm), atomic in one Lua script.

``hit(scope, subject, limit=5, window_seconds=60)`` allows a burst of 5, then one more every 12 seconds:
over any window at most ``limit`` hits get through, and a blocked caller is told exactly when the next one
will. Per subject Redis keeps one number (the "theoretical arrival time") under a key that expires when
the subject is back to a full allowance, so memory does not grow with the limit, and Redis's own clock is
used, so web processes on machines with different clocks agree.

Keys are ``marid:rl:{scope}:{sha256(subject)[:32]}``: IP addresses and e-mail addresses never appear in
Redis in the clear.
"""

from __future__ import annotations

import hashlib
import math
import re
from dataclasses import dataclass

from redis.asyncio import Redis

KEY_PREFIX = "marid:rl:"
_SCOPE = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

# The GCRA step, shared by both scripts: ``gcra(key, window (µs), limit, cost)`` with cost 1 (count this hit),
# 0 (only look) or -1 (give one counted hit back); returns {allowed (0/1), remaining, retry_after (µs)}. ``now``
# is Redis's clock, read once per script.
_GCRA_STEP = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000000 + tonumber(clock[2])
local function gcra(key, window, limit, cost)
  local interval = math.floor(window / limit)
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  if cost < 0 then
    tat = tat + interval * cost
    if tat <= now then
      redis.call('DEL', key)
      return {1, limit, 0}
    end
    redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
    return {1, math.floor((window - (tat - now)) / interval), 0}
  end
  local allow_at = tat + interval - window
  if now < allow_at then
    return {0, 0, allow_at - now}
  end
  if cost > 0 then
    tat = tat + interval * cost
    redis.call('SET', key, string.format('%d', tat), 'PX', math.ceil((tat - now) / 1000))
  end
  return {1, math.floor((window - (tat - now)) / interval), 0}
end
"""

# One subject: KEYS[1] its key; ARGV: window (µs), limit, cost.
_GCRA = _GCRA_STEP + "return gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]))\n"

# A hit counted only if a gate allows it, in one round trip: KEYS[1] the gate (only looked at), KEYS[2] the
# subject hit. ARGV: the gate's window (µs) and limit, the hit's window (µs) and limit. Returns {allowed,
# remaining, retry_after (µs), 1 when the gate refused (then nothing was counted)}.
_GATED = (
    _GCRA_STEP
    + """
local gate = gcra(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), 0)
if gate[1] == 0 then
  return {0, 0, gate[3], 1}
end
local hit = gcra(KEYS[2], tonumber(ARGV[3]), tonumber(ARGV[4]), 1)
return {hit[1], hit[2], hit[3], 0}
"""
)


@dataclass(frozen=True)
class Limit:
    """A (scope, subject) counted at most ``limit`` times per ``window_seconds``."""

    scope: str
    subject: str
    limit: int
    window_seconds: int


@dataclass(frozen=True)
class RateResult:
    allowed: bool
    # Hits still allowed right now (after this one, for ``hit``).
    remaining: int
    # Seconds until the next hit will be allowed; 0 when allowed, at least 1 when blocked.
    retry_after: int
    # The scope that refused (set by ``app.web.forms.rate_limited``, which checks several at once).
    scope: str = ""


def wait_words(seconds: int) -> str:
    """ "30 seconds", "a minute", "4 minutes", "about an hour": how long a person waits, said as a person would."""
    if seconds <= 50:
        return f"{max(1, seconds)} second{'' if seconds == 1 else 's'}"
    minutes = (seconds + 59) // 60
    if minutes == 1:
        return "a minute"
    if minutes < 55:
        return f"{minutes} minutes"
    if minutes <= 65:
        return "about an hour"
    return f"about {(minutes + 30) // 60} hours"


def retry_message(result: RateResult, reason: str = "attempts") -> str:
    """ "Too many wrong passwords in a short time. Try again in 4 minutes.": why, and when to retry.

    ``reason`` names what was counted, in the plural ("wrong passwords", "links sent to this address"): only real
    attempts are counted (a form refused as invalid never is), so it is always something the person did.
    """
    return f"Too many {reason} in a short time. Try again in {wait_words(result.retry_after)}."


def rate_key(scope: str, subject: str) -> str:
    if not _SCOPE.match(scope):
        raise ValueError(f"a rate-limit scope is 1-64 letters, digits or _.:- characters, not {scope!r}")
    return f"{KEY_PREFIX}{scope}:{hashlib.sha256(subject.encode()).hexdigest()[:32]}"


class RateLimiter:
    """Counts hits per (scope, subject), e.g. ("login.ip", "203.0.113.9") or ("login.email", "a@b.c")."""

    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._script = redis.register_script(_GCRA)
        self._gated = redis.register_script(_GATED)

    async def _run(self, scope: str, subject: str, limit: int, window_seconds: int, cost: int) -> RateResult:
        if limit < 1 or window_seconds < 1:
            raise ValueError("limit and window_seconds must be at least 1")
        allowed, remaining, retry_us = await self._script(
            keys=[rate_key(scope, subject)], args=[window_seconds * 1_000_000, limit, cost]
        )
        if allowed:
            return RateResult(allowed=True, remaining=max(0, int(remaining)), retry_after=0)
        return RateResult(allowed=False, remaining=0, retry_after=max(1, math.ceil(int(retry_us) / 1_000_000)))

    async def hit(self, scope: str, subject: str, *, limit: int, window_seconds: int) -> RateResult:
        """Count one hit if it is allowed (a refused hit is not counted, so retrying does not extend a block)."""
        return await self._run(scope, subject, limit, window_seconds, cost=1)

    async def peek(self, scope: str, subject: str, *, limit: int, window_seconds: int) -> RateResult:
        """Whether a hit would be allowed now, without counting one."""
        return await self._run(scope, subject, limit, window_seconds, cost=0)

    async def refund(self, scope: str, subject: str, *, limit: int, window_seconds: int) -> RateResult:
        """Give back one counted hit (e.g. a sign-in attempt that turned out right): only failures add up."""
        return await self._run(scope, subject, limit, window_seconds, cost=-1)

    async def hit_unless(self, gate: Limit, hit: Limit) -> RateResult:
        """``peek`` at ``gate`` and, only if it allows, ``hit`` ``hit``: one round trip instead of two. A refusal
        says which refused in ``scope`` (the gate's: nothing was counted)."""
        for limit in (gate, hit):
            if limit.limit < 1 or limit.window_seconds < 1:
                raise ValueError("limit and window_seconds must be at least 1")
        allowed, remaining, retry_us, gated = await self._gated(
            keys=[rate_key(gate.scope, gate.subject), rate_key(hit.scope, hit.subject)],
            args=[gate.window_seconds * 1_000_000, gate.limit, hit.window_seconds * 1_000_000, hit.limit],
        )
        if allowed:
            return RateResult(allowed=True, remaining=max(0, int(remaining)), retry_after=0, scope=hit.scope)
        return RateResult(
            allowed=False,
            remaining=0,
            retry_after=max(1, math.ceil(int(retry_us) / 1_000_000)),
            scope=gate.scope if gated else hit.scope,
        )

    async def reset(self, scope: str, subject: str) -> None:
        """Forget the subject's hits (e.g. after a successful login)."""
        await self.redis.delete(rate_key(scope, subject))
