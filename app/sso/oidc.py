"""The OpenID Connect relying party: discovery, the authorization request, the code exchange, the ID token.

Authorization-code flow only, always with PKCE (S256), ``state`` and ``nonce`` (ASVS 10.2.1, 10.4.6, 10.5.1).
authlib supplies the PKCE challenge and the ID-token claim rules (:class:`authlib.oidc.core.CodeIDToken`),
joserfc verifies the signature against the provider's published keys. authlib's own client is not used: it
keeps its state in ``request.session`` and, left to its defaults, does not compare ``aud`` with our client id.
Here every check is explicit: signature (an asymmetric algorithm the provider announces), ``iss`` (exactly
the issuer from discovery), ``aud`` (our client id; several audiences only with ``azp`` = our client id),
``exp``/``iat`` (60 s leeway), ``nonce`` (the one this sign-in sent), ``at_hash`` when present.

Every URL we call comes from an admin, so each one is checked first: https only in production (plain http
only to a loopback provider outside production), never an internal address in production. That last check
happens where connections are opened, on the address actually connected to (:mod:`app.sso.egress`).
"""

from __future__ import annotations

import base64
import secrets
import time
from dataclasses import dataclass, field
from typing import Any, ClassVar
from urllib.parse import quote, urlencode, urlsplit

import httpx
from authlib.oauth2.rfc7636 import create_s256_code_challenge
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry

from app.config import Settings
from app.sso.dns import DnsLookupError
from app.sso.egress import AddressGuard, InternalAddress, SystemResolver, resolver_for

HTTP_TIMEOUT = 5.0
MAX_DOCUMENT_BYTES = 256 * 1024
CACHE_SECONDS = 300
CLOCK_LEEWAY = 60
SCOPE = "openid email profile"
# Only asymmetric signatures: "none" and HS* (keyed with the client secret) are never accepted.
SIGNING_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA")
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})


class OidcError(Exception):
    """A sign-in or a provider check that failed. ``reason`` is a short code for the audit log."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


@dataclass(frozen=True)
class ProviderMetadata:
    """What Marid uses of a provider's discovery document."""

    issuer: str
    authorization_endpoint: str
    token_endpoint: str
    jwks_uri: str
    userinfo_endpoint: str | None
    id_token_algorithms: tuple[str, ...]
    token_auth_methods: tuple[str, ...]
    # RFC 9207: the provider names itself in the redirect back, which defends against IdP mix-up.
    sends_iss_in_response: bool
    code_challenge_methods: tuple[str, ...] = field(default=())

    @property
    def token_auth_method(self) -> str:
        # RFC 8414: absent means client_secret_basic.
        if not self.token_auth_methods or "client_secret_basic" in self.token_auth_methods:
            return "client_secret_basic"
        if "client_secret_post" in self.token_auth_methods:
            return "client_secret_post"
        raise OidcError("unsupported_client_auth", "The provider accepts neither client_secret_basic nor _post.")


def issuer_problem(issuer: str, *, production: bool) -> str | None:
    """Why ``issuer`` cannot be a provider's issuer URL, or None."""
    if not issuer:
        return "Enter the provider's issuer URL."
    if len(issuer) > 500:
        return "Keep the issuer URL under 500 characters."
    return url_problem(issuer, production=production, what="The issuer URL")


def url_problem(url: str, *, production: bool, what: str = "The URL", allow_query: bool = False) -> str | None:
    """Why Marid will not call ``url``, or None: only absolute http(s) URLs, and https in production."""
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises ValueError for a malformed port
    except ValueError:
        return f"{what} is not a valid URL."
    if parts.scheme not in ("https", "http") or not parts.hostname:
        return f"{what} must be an absolute https:// URL."
    if parts.fragment or "#" in url or (not allow_query and (parts.query or "?" in url)):
        return f"{what} must not have a query or a fragment."
    if parts.username or parts.password:
        return f"{what} must not contain a user name or password."
    if any(ch.isspace() for ch in url):
        return f"{what} must not contain spaces."
    if parts.scheme == "http" and (production or parts.hostname not in LOOPBACK_HOSTS):
        return f"{what} must use https:// (plain http is only for a provider on this machine, outside production)."
    return None


class ProviderClient:
    """HTTP to one provider, with small bounded caches of its discovery document and keys (per process)."""

    _metadata: ClassVar[dict[str, tuple[float, ProviderMetadata]]] = {}
    _jwks: ClassVar[dict[str, tuple[float, dict[str, Any]]]] = {}

    def __init__(
        self,
        *,
        production: bool,
        transport: httpx.AsyncBaseTransport | None = None,
        guard: AddressGuard | None = None,
    ) -> None:
        """``guard``: which addresses a provider may have (in production by default: public ones only)."""
        self.production = production
        self.transport = transport
        self.guard = guard if guard is not None or not production else AddressGuard(SystemResolver())

    @classmethod
    def for_settings(cls, settings: Settings) -> ProviderClient:
        guard = AddressGuard(resolver_for(settings)) if settings.is_production else None
        return cls(production=settings.is_production, guard=guard)

    async def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        if problem := url_problem(url, production=self.production, what=url, allow_query=True):
            raise OidcError("bad_endpoint", f"The provider gave an unusable address: {problem}")
        transport = self.transport
        if transport is None and self.guard is not None:
            transport = self.guard.transport()
        try:
            async with (
                httpx.AsyncClient(
                    timeout=HTTP_TIMEOUT, follow_redirects=False, transport=transport, trust_env=self.guard is None
                ) as client,
                client.stream(method, url, **kwargs) as response,
            ):
                body = b""
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_DOCUMENT_BYTES:
                        raise OidcError("too_large", f"{url} answered with more than {MAX_DOCUMENT_BYTES} bytes.")
                return httpx.Response(response.status_code, headers=response.headers, content=body)
        except InternalAddress as refused:
            raise OidcError("internal_address", str(refused)) from refused
        except DnsLookupError as error:
            raise OidcError("unreachable", str(error)) from error
        except httpx.TimeoutException as error:
            raise OidcError("timeout", f"{url} did not answer within {HTTP_TIMEOUT:.0f} seconds.") from error
        except httpx.HTTPError as error:
            raise OidcError("unreachable", f"Could not reach {url}: {type(error).__name__}.") from error

    async def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        if response.status_code != 200:
            raise OidcError("http_error", f"{what} answered HTTP {response.status_code}.")
        try:
            value = response.json()
        except ValueError as error:
            raise OidcError("bad_document", f"{what} is not JSON.") from error
        if not isinstance(value, dict):
            raise OidcError("bad_document", f"{what} is not a JSON object.")
        return value

    async def discover(self, issuer: str, *, fresh: bool = False) -> ProviderMetadata:
        """The provider's metadata; its ``issuer`` must be exactly the configured one (OIDC Discovery 4.3)."""
        cached = self._metadata.get(issuer)
        if cached and not fresh and cached[0] > time.monotonic():
            return cached[1]
        if problem := issuer_problem(issuer, production=self.production):
            raise OidcError("bad_issuer", problem)
        url = issuer.rstrip("/") + "/.well-known/openid-configuration"
        document = await self._json(await self._request("GET", url), "The discovery document")
        metadata = _parse_metadata(document, issuer, production=self.production)
        self._metadata[issuer] = (time.monotonic() + CACHE_SECONDS, metadata)
        return metadata

    async def keys(self, metadata: ProviderMetadata, *, fresh: bool = False) -> KeySet:
        cached = self._jwks.get(metadata.jwks_uri)
        if cached and not fresh and cached[0] > time.monotonic():
            document = cached[1]
        else:
            document = await self._json(await self._request("GET", metadata.jwks_uri), "The key set (jwks_uri)")
            self._jwks[metadata.jwks_uri] = (time.monotonic() + CACHE_SECONDS, document)
        keys = document.get("keys")
        if not isinstance(keys, list):
            raise OidcError("bad_keys", "The provider's key set has no keys.")
        signing = [key for key in keys if isinstance(key, dict) and key.get("use", "sig") == "sig"]
        try:
            return KeySet.import_key_set({"keys": signing})
        except (JoseError, ValueError, TypeError) as error:
            raise OidcError("bad_keys", "The provider's key set has no usable signing key.") from error

    async def exchange_code(
        self,
        metadata: ProviderMetadata,
        *,
        client_id: str,
        client_secret: str,
        code: str,
        redirect_uri: str,
        code_verifier: str,
    ) -> dict[str, Any]:
        form = {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": redirect_uri,
            "code_verifier": code_verifier,
        }
        headers = {"Accept": "application/json"}
        if metadata.token_auth_method == "client_secret_basic":
            # RFC 6749 2.3.1: each part form-encoded before Basic encoding.
            pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
            headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
        else:
            form |= {"client_id": client_id, "client_secret": client_secret}
        response = await self._request("POST", metadata.token_endpoint, data=form, headers=headers)
        if response.status_code != 200:
            detail = ""
            try:
                body = response.json()
                detail = f": {body.get('error', '')} {body.get('error_description', '')}".rstrip()
            except ValueError:
                pass
            status = response.status_code
            raise OidcError("token_error", f"The provider refused the code exchange (HTTP {status}{detail}).")
        token = await self._json(response, "The token endpoint")
        if not isinstance(token.get("id_token"), str):
            raise OidcError("no_id_token", "The provider's answer has no ID token.")
        return token

    async def validate_id_token(
        self, metadata: ProviderMetadata, id_token: str, *, client_id: str, nonce: str, access_token: str | None
    ) -> dict[str, Any]:
        """The ID token's claims once signature, iss, aud (+azp), exp, iat, nonce and at_hash all check out."""
        algorithms = [alg for alg in metadata.id_token_algorithms if alg in SIGNING_ALGORITHMS] or ["RS256"]
        registry = JWSRegistry(algorithms=algorithms, strict_check_header=False)
        try:
            try:
                token = jwt.decode(id_token, await self.keys(metadata), registry=registry)
            except InvalidKeyIdError:
                # The provider may have rotated its keys since we cached them.
                token = jwt.decode(id_token, await self.keys(metadata, fresh=True), registry=registry)
            options: dict[str, Any] = {
                "iss": {"essential": True, "value": metadata.issuer},
                "aud": {"essential": True, "value": client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
                "nonce": {"essential": True, "value": nonce},
            }
            params: dict[str, Any] = {"client_id": client_id, "nonce": nonce}
            if access_token:
                params["access_token"] = access_token
            claims = CodeIDToken(token.claims, token.header, options, params)
            claims.validate(now=int(time.time()), leeway=CLOCK_LEEWAY)
        except JoseError as error:
            raise OidcError("invalid_id_token", f"The ID token was refused ({_describe(error)}).") from error
        if not isinstance(claims.get("sub"), str) or not 1 <= len(claims["sub"]) <= 255:
            raise OidcError("invalid_id_token", "The ID token was refused (its subject is missing or too long).")
        return dict(claims)

    async def userinfo(self, metadata: ProviderMetadata, access_token: str) -> dict[str, Any]:
        if not metadata.userinfo_endpoint:
            return {}
        headers = {"Authorization": f"Bearer {access_token}", "Accept": "application/json"}
        return await self._json(
            await self._request("GET", metadata.userinfo_endpoint, headers=headers), "The userinfo endpoint"
        )


def _describe(error: JoseError) -> str:
    claim = getattr(error, "claim", None)
    if claim:
        return f"{getattr(error, 'error', 'invalid_claim')}: '{claim}'"
    return str(getattr(error, "description", "") or type(error).__name__)


def _parse_metadata(document: dict[str, Any], issuer: str, *, production: bool) -> ProviderMetadata:
    named = document.get("issuer")
    if named != issuer:
        raise OidcError(
            "issuer_mismatch",
            f"The provider calls itself “{named}”, not “{issuer}”; enter its issuer exactly as it gives it.",
        )
    endpoints: dict[str, str] = {}
    for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
        value = document.get(name)
        if not isinstance(value, str) or not value:
            raise OidcError("bad_document", f"The discovery document has no {name}.")
        if problem := url_problem(value, production=production, what=name, allow_query=True):
            raise OidcError("bad_endpoint", problem)
        endpoints[name] = value
    userinfo = document.get("userinfo_endpoint")
    response_types = document.get("response_types_supported") or []
    if "code" not in response_types:
        raise OidcError("no_code_flow", "The provider does not offer the authorization-code flow.")
    challenge_methods = tuple(str(m) for m in document.get("code_challenge_methods_supported") or [])
    if challenge_methods and "S256" not in challenge_methods:
        raise OidcError("no_pkce", "The provider does not support PKCE with S256.")
    algorithms = tuple(str(alg) for alg in document.get("id_token_signing_alg_values_supported") or ["RS256"])
    if not any(alg in SIGNING_ALGORITHMS for alg in algorithms):
        raise OidcError("no_signing_algorithm", "The provider signs ID tokens with no algorithm Marid accepts.")
    return ProviderMetadata(
        issuer=issuer,
        authorization_endpoint=endpoints["authorization_endpoint"],
        token_endpoint=endpoints["token_endpoint"],
        jwks_uri=endpoints["jwks_uri"],
        userinfo_endpoint=userinfo if isinstance(userinfo, str) and userinfo else None,
        id_token_algorithms=algorithms,
        token_auth_methods=tuple(str(m) for m in document.get("token_endpoint_auth_methods_supported") or []),
        sends_iss_in_response=document.get("authorization_response_iss_parameter_supported") is True,
        code_challenge_methods=challenge_methods,
    )


@dataclass(frozen=True)
class AuthorizationRequest:
    url: str
    state: str
    nonce: str
    code_verifier: str


def authorization_request(
    metadata: ProviderMetadata, *, client_id: str, redirect_uri: str, login_hint: str | None = None
) -> AuthorizationRequest:
    """The provider URL to send the browser to, with fresh state, nonce and PKCE verifier (≥ 256 bits each)."""
    state, nonce, verifier = secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(48)
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "scope": SCOPE,
        "state": state,
        "nonce": nonce,
        "code_challenge": create_s256_code_challenge(verifier),
        "code_challenge_method": "S256",
    }
    if login_hint:
        params["login_hint"] = login_hint
    separator = "&" if urlsplit(metadata.authorization_endpoint).query else "?"
    url = metadata.authorization_endpoint + separator + urlencode(params)
    return AuthorizationRequest(url=url, state=state, nonce=nonce, code_verifier=verifier)
