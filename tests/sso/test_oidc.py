"""ID-token validation in app.sso.oidc, against tokens made here and a provider served by httpx.MockTransport.

The end-to-end tests see oidc-provider's real tokens (and a wrong aud or nonce); these cover what a real
provider will not produce on demand: a forged signature, another issuer, an expired token, "alg": "none",
an HMAC token keyed with the client secret, and a key rotation.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from joserfc import jwt
from joserfc.jwk import OctKey, RSAKey

from app.sso.oidc import OidcError, ProviderClient, issuer_problem

ISSUER = "https://idp.example.com"
CLIENT = "marid"
NONCE = "n-0S6_WzA2Mj"


class FakeProvider:
    def __init__(self) -> None:
        self.key = RSAKey.generate_key(2048, parameters={"kid": "k1", "use": "sig", "alg": "RS256"})
        self.jwks_requests = 0

    def discovery(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/auth",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.discovery())
        if request.url.path == "/jwks":
            self.jwks_requests += 1
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        return httpx.Response(404)

    def token(self, key: Any = None, header: dict[str, Any] | None = None, **overrides: Any) -> str:
        now = int(time.time())
        claims = {"iss": ISSUER, "sub": "alice", "aud": CLIENT, "exp": now + 300, "iat": now, "nonce": NONCE}
        claims |= overrides
        claims = {k: v for k, v in claims.items() if v is not None}
        return jwt.encode(header or {"alg": "RS256", "kid": "k1"}, claims, key or self.key)


@pytest.fixture
def provider() -> Iterator[FakeProvider]:
    yield FakeProvider()
    # The caches are per process; the next test's provider has other keys.
    ProviderClient._metadata.pop(ISSUER, None)
    ProviderClient._jwks.pop(f"{ISSUER}/jwks", None)


async def _validate(provider: FakeProvider, token: str) -> dict[str, Any]:
    # production=False: an https issuer is still required, but its name is not resolved (nothing leaves the test).
    client = ProviderClient(production=False, transport=httpx.MockTransport(provider.handle))
    metadata = await client.discover(ISSUER, fresh=True)
    return await client.validate_id_token(metadata, token, client_id=CLIENT, nonce=NONCE, access_token=None)


async def test_a_good_token_passes(provider: FakeProvider) -> None:
    claims = await _validate(provider, provider.token())
    assert claims["sub"] == "alice" and claims["aud"] == CLIENT


def _unsigned(claims: dict[str, Any]) -> str:
    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}."


@pytest.mark.parametrize(
    ("make", "needle"),
    [
        (lambda p: p.token(key=RSAKey.generate_key(2048)), "BadSignature"),
        (lambda p: p.token(iss="https://evil.example"), "'iss'"),
        (lambda p: p.token(aud="other-rp"), "'aud'"),
        (lambda p: p.token(aud=["other-rp", CLIENT]), "'azp'"),
        (lambda p: p.token(exp=int(time.time()) - 600), "expired"),
        (lambda p: p.token(nonce="replayed"), "'nonce'"),
        (lambda p: p.token(nonce=None), "'nonce'"),
        (lambda p: p.token(iat=None), "'iat'"),
        (
            lambda p: p.token(header={"alg": "HS256", "kid": "k1"}, key=OctKey.import_key("marid-client-secret" * 2)),
            "alg",
        ),  # fmt: skip
        (
            lambda p: _unsigned({"iss": ISSUER, "sub": "a", "aud": CLIENT, "exp": 2**40, "iat": 1, "nonce": NONCE}),
            "alg",
        ),  # fmt: skip
    ],
    ids=[
        "forged-signature",
        "other-issuer",
        "other-audience",
        "extra-audience-no-azp",
        "expired",
        "wrong-nonce",
        "no-nonce",
        "no-iat",
        "hmac-with-client-secret",
        "alg-none",
    ],  # fmt: skip
)
async def test_bad_tokens_are_refused(provider: FakeProvider, make: Any, needle: str) -> None:
    with pytest.raises(OidcError) as refused:
        await _validate(provider, make(provider))
    assert refused.value.reason == "invalid_id_token"
    assert needle.lower() in refused.value.message.lower(), refused.value.message


async def test_a_rotated_key_is_fetched_again(provider: FakeProvider) -> None:
    client = ProviderClient(production=False, transport=httpx.MockTransport(provider.handle))
    metadata = await client.discover(ISSUER, fresh=True)
    await client.keys(metadata, fresh=True)
    provider.key = RSAKey.generate_key(2048, parameters={"kid": "k2", "use": "sig", "alg": "RS256"})
    token = provider.token(header={"alg": "RS256", "kid": "k2"})
    claims = await client.validate_id_token(metadata, token, client_id=CLIENT, nonce=NONCE, access_token=None)
    assert claims["sub"] == "alice" and provider.jwks_requests == 2


async def test_discovery_must_name_the_configured_issuer(provider: FakeProvider) -> None:
    client = ProviderClient(production=False, transport=httpx.MockTransport(provider.handle))
    with pytest.raises(OidcError) as refused:
        await client.discover(ISSUER + "/", fresh=True)
    assert refused.value.reason == "issuer_mismatch"


@pytest.mark.parametrize(
    ("issuer", "production", "ok"),
    [
        ("https://login.example.com", True, True),
        ("https://login.example.com/tenant/1", True, True),
        ("http://127.0.0.1:9000", False, True),
        ("http://localhost:9000", False, True),
        ("http://127.0.0.1:9000", True, False),
        ("http://login.example.com", False, False),
        ("https://login.example.com?x=1", True, False),
        ("https://user:pw@login.example.com", True, False),
        ("https://login.example.com:99999", True, False),
        ("javascript:alert(1)", False, False),
    ],
)
def test_issuer_urls(issuer: str, production: bool, ok: bool) -> None:
    assert (issuer_problem(issuer, production=production) is None) is ok


async def test_production_refuses_internal_addresses() -> None:
    client = ProviderClient(production=True)
    with pytest.raises(OidcError) as refused:
        await client.discover("https://127.0.0.1:9/", fresh=True)
    assert refused.value.reason == "internal_address"
