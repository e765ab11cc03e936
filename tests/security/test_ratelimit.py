"""GCRA rate limits against the real Redis: bursts, refusals with a sensible retry, expiry, independence."""

from __future__ import annotations

import asyncio
import hashlib
import secrets
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from app.security.ratelimit import Limit, RateLimiter, RateResult, rate_key
from tests.conftest import Services


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[Redis]:
    client = Redis.from_url(services.redis.url)
    yield client
    await client.aclose()


@pytest.fixture
def limiter(redis: Redis) -> RateLimiter:
    return RateLimiter(redis)


@pytest.fixture
def scope() -> str:
    return f"test.{secrets.token_hex(4)}"


async def test_a_burst_up_to_the_limit_then_refused(limiter: RateLimiter, scope: str) -> None:
    results = [await limiter.hit(scope, "203.0.113.9", limit=3, window_seconds=60) for _ in range(3)]
    assert results == [RateResult(True, 2, 0), RateResult(True, 1, 0), RateResult(True, 0, 0)]
    refused = await limiter.hit(scope, "203.0.113.9", limit=3, window_seconds=60)
    assert not refused.allowed and refused.remaining == 0
    # One slot comes back every window / limit = 20 s.
    assert 19 <= refused.retry_after <= 20
    # Refused hits are not counted: hammering does not push the retry further away.
    for _ in range(5):
        again = await limiter.hit(scope, "203.0.113.9", limit=3, window_seconds=60)
        assert not again.allowed and again.retry_after <= refused.retry_after


async def test_peek_does_not_count(limiter: RateLimiter, scope: str) -> None:
    for _ in range(5):
        assert await limiter.peek(scope, "a@example.com", limit=2, window_seconds=60) == RateResult(True, 2, 0)
    await limiter.hit(scope, "a@example.com", limit=2, window_seconds=60)
    assert await limiter.peek(scope, "a@example.com", limit=2, window_seconds=60) == RateResult(True, 1, 0)
    await limiter.hit(scope, "a@example.com", limit=2, window_seconds=60)
    blocked = await limiter.peek(scope, "a@example.com", limit=2, window_seconds=60)
    assert not blocked.allowed and 29 <= blocked.retry_after <= 30


async def test_the_window_passes(limiter: RateLimiter, scope: str) -> None:
    for _ in range(2):
        assert (await limiter.hit(scope, "s", limit=2, window_seconds=1)).allowed
    refused = await limiter.hit(scope, "s", limit=2, window_seconds=1)
    assert not refused.allowed and refused.retry_after == 1
    await asyncio.sleep(1.05)
    assert await limiter.hit(scope, "s", limit=2, window_seconds=1) == RateResult(True, 1, 0)


async def test_subjects_and_scopes_are_independent(limiter: RateLimiter, scope: str) -> None:
    for _ in range(2):
        await limiter.hit(scope, "one", limit=2, window_seconds=60)
    assert not (await limiter.hit(scope, "one", limit=2, window_seconds=60)).allowed
    assert (await limiter.hit(scope, "two", limit=2, window_seconds=60)).allowed
    assert (await limiter.hit(scope + "b", "one", limit=2, window_seconds=60)).allowed


async def test_reset_forgets_the_subject(limiter: RateLimiter, scope: str) -> None:
    for _ in range(3):
        await limiter.hit(scope, "one", limit=3, window_seconds=60)
    assert not (await limiter.peek(scope, "one", limit=3, window_seconds=60)).allowed
    await limiter.reset(scope, "one")
    assert await limiter.peek(scope, "one", limit=3, window_seconds=60) == RateResult(True, 3, 0)
    await limiter.reset(scope, "never seen")


async def test_keys_hash_the_subject_and_expire(limiter: RateLimiter, redis: Redis, scope: str) -> None:
    await limiter.hit(scope, "198.51.100.7", limit=5, window_seconds=10)
    keys = [key.decode() async for key in redis.scan_iter(match=f"marid:rl:{scope}:*")]
    digest = hashlib.sha256(b"198.51.100.7").hexdigest()[:32]
    assert keys == [f"marid:rl:{scope}:{digest}"] == [rate_key(scope, "198.51.100.7")]
    assert "198.51.100.7" not in keys[0]
    # The key lives until the subject is back to a full allowance (one interval after one hit).
    assert 0 < await redis.pttl(keys[0]) <= 2_000


async def test_concurrent_hits_are_counted_atomically(limiter: RateLimiter, scope: str) -> None:
    results = await asyncio.gather(*(limiter.hit(scope, "burst", limit=10, window_seconds=60) for _ in range(50)))
    assert sum(result.allowed for result in results) == 10
    assert sorted(result.remaining for result in results if result.allowed) == list(range(10))


async def test_arguments_are_checked(limiter: RateLimiter, scope: str) -> None:
    with pytest.raises(ValueError):
        await limiter.hit(scope, "s", limit=0, window_seconds=60)
    with pytest.raises(ValueError):
        await limiter.hit(scope, "s", limit=1, window_seconds=0)
    for bad_scope in ("", "has space", "x" * 65, "{tag}"):
        with pytest.raises(ValueError):
            await limiter.hit(bad_scope, "s", limit=1, window_seconds=1)


async def test_a_refund_gives_one_hit_back_and_never_more(limiter: RateLimiter, scope: str) -> None:
    for _ in range(3):
        await limiter.hit(scope, "203.0.113.7", limit=3, window_seconds=60)
    assert not (await limiter.peek(scope, "203.0.113.7", limit=3, window_seconds=60)).allowed
    assert (await limiter.refund(scope, "203.0.113.7", limit=3, window_seconds=60)).remaining == 1
    assert (await limiter.hit(scope, "203.0.113.7", limit=3, window_seconds=60)).allowed
    assert not (await limiter.hit(scope, "203.0.113.7", limit=3, window_seconds=60)).allowed
    # Refunds beyond what was counted do not bank extra hits.
    for _ in range(10):
        await limiter.refund(scope, "203.0.113.8", limit=3, window_seconds=60)
    hits = [await limiter.hit(scope, "203.0.113.8", limit=3, window_seconds=60) for _ in range(4)]
    assert [hit.allowed for hit in hits] == [True, True, True, False]


async def test_a_gated_hit_counts_only_while_the_gate_allows(limiter: RateLimiter, scope: str) -> None:
    gate = Limit(f"{scope}.gate", "203.0.113.7", 2, 60)
    hit = Limit(scope, "key-1", 3, 60)
    first = await limiter.hit_unless(gate, hit)
    assert first == RateResult(True, 2, 0, scope=scope)
    # The gate is only looked at: two failures fill it, and from then on nothing is counted on the key.
    for _ in range(2):
        assert (await limiter.hit(gate.scope, gate.subject, limit=2, window_seconds=60)).allowed
    gated = await limiter.hit_unless(gate, hit)
    assert not gated.allowed and gated.scope == gate.scope and 29 <= gated.retry_after <= 30
    assert (await limiter.peek(scope, "key-1", limit=3, window_seconds=60)).remaining == 2
    # With an open gate the key's own limit refuses in its own name.
    open_gate = Limit(f"{scope}.gate", "203.0.113.8", 2, 60)
    assert (await limiter.hit_unless(open_gate, hit)).remaining == 1
    assert (await limiter.hit_unless(open_gate, hit)).remaining == 0
    refused = await limiter.hit_unless(open_gate, hit)
    assert not refused.allowed and refused.scope == scope
