"""Where a workspace's provider may be: address checks for base URLs, at save time and at every connection.

A base URL comes from a workspace admin and Marid calls it with the workspace's key, from inside the platform's
network. In production it must be ``https://`` on a public address, unless ``MARID_LLM_ALLOW_PRIVATE_ENDPOINTS``
lets workspaces reach a self-hosted Ollama or vLLM on a private or loopback address. The check reuses the SSO
egress guard's rules (:mod:`app.sso.egress`): the name is resolved once per connection, every address must be
allowed, and the connection goes to exactly the addresses checked (no DNS rebinding between check and use).
The SDKs are built on httpx2, so the guard's transport is rebuilt here on httpcore2.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from urllib.parse import urlsplit

import httpcore2
import httpx2

from app.config import Settings
from app.sso.egress import AddressPolicy, HostResolver, InternalAddress, checked_addresses, public_address, resolver_for

__all__ = ["InternalAddress", "base_url_problem", "check_host", "guarded_transport"]

MAX_URL = 500


def base_url_problem(url: str, *, private_allowed: bool) -> str | None:
    """What is wrong with a provider's base URL as written (its addresses are checked apart), or None."""
    if not url:
        return "Enter the endpoint's base URL, like https://api.example.com/v1."
    if len(url) > MAX_URL:
        return f"A base URL is at most {MAX_URL} characters."
    if any(ord(char) < 33 or ord(char) == 127 for char in url):
        return "A base URL has no spaces or control characters."
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return "That is not a valid URL."
    if parts.scheme not in ("http", "https"):
        return "A base URL starts with https:// (or http:// for a local endpoint)."
    if parts.scheme == "http" and not private_allowed:
        return "Use https://: this deployment calls providers over https only."
    if not parts.hostname:
        return "The URL names no host."
    if parts.username is not None or parts.password is not None:
        return "Put the key in the key field, not in the URL."
    if parts.query or parts.fragment:
        return "A base URL has no query (?…) or fragment (#…)."
    if port == 0:
        return "That port cannot be used."
    if not private_allowed and _literal_not_public(parts.hostname):
        return "That address is internal; this deployment only calls providers on the internet."
    return None


def _literal_not_public(host: str) -> bool:
    try:
        return not ipaddress.ip_address(host.strip("[]")).is_global
    except ValueError:
        return host.lower() == "localhost" or host.lower().endswith(".localhost")


async def check_host(settings: Settings, url: str) -> None:
    """Resolve the URL's host and refuse (InternalAddress, with a message) an address Marid will not call."""
    if settings.llm_private_endpoints:
        return
    host = urlsplit(url).hostname or ""
    await checked_addresses(resolver_for(settings), host, public_address)


class _PinnedBackend(httpcore2.AsyncNetworkBackend):
    """Resolves and checks each host once per connection, then connects to exactly those addresses."""

    def __init__(self, resolver: HostResolver, allowed: AddressPolicy) -> None:
        self._resolver = resolver
        self._allowed = allowed
        self._inner = httpcore2.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        try:
            addresses = await checked_addresses(self._resolver, host, self._allowed)
        except (InternalAddress, Exception) as refused:
            raise httpcore2.ConnectError(str(refused)) from refused
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore2.ConnectError, httpcore2.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore2's interface)
        socket_options: Iterable[httpcore2.SOCKET_OPTION] | None = None,
    ) -> httpcore2.AsyncNetworkStream:
        raise httpcore2.ConnectError("unix sockets are not allowed for LLM providers")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class _PinnedTransport(httpx2.AsyncHTTPTransport):
    def __init__(self, resolver: HostResolver, allowed: AddressPolicy) -> None:
        super().__init__(trust_env=False)
        self._pool = httpcore2.AsyncConnectionPool(
            ssl_context=httpx2.create_ssl_context(trust_env=False),
            network_backend=_PinnedBackend(resolver, allowed),
            max_connections=100,
            max_keepalive_connections=20,
        )


def guarded_transport(settings: Settings) -> httpx2.AsyncBaseTransport | None:
    """The transport providers are called through: public addresses only in production (None: no guard)."""
    if settings.llm_private_endpoints:
        return None
    return _PinnedTransport(resolver_for(settings), public_address)
