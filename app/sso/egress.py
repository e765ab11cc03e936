"""Calling an admin's identity provider without letting the URL reach inside our network (SSRF, DNS rebinding).

Checking a host's addresses and then connecting by name resolves twice: a DNS server that answers a public
address to the check and an internal one to the connection gets past the check. Here the check happens in the
one place that opens connections, httpcore's network backend: it resolves the name once, refuses if any
address is not allowed, and connects to the address it checked. The URL keeps the name, so the Host header,
TLS SNI and certificate verification all use the name as before.

No HTTP proxy is used on this path (``trust_env=False``): a proxy would resolve the name itself.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import httpcore
import httpx

from app.config import Settings, parse_nameservers
from app.sso.dns import DnsLookupError, host_addresses, make_resolver

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
AddressPolicy = Callable[[IPAddress], bool]


class InternalAddress(Exception):
    """The host resolves to an address Marid will not call; the message names the host."""


class HostResolver(Protocol):
    async def addresses(self, host: str) -> list[str]: ...


class SystemResolver:
    """The operating system's resolver (``/etc/hosts``, then DNS), as any program on the machine sees it."""

    async def addresses(self, host: str) -> list[str]:
        try:
            infos = await asyncio.get_running_loop().getaddrinfo(host, None, type=socket.SOCK_STREAM)
        except OSError as error:
            raise DnsLookupError(f"Could not resolve {host}.") from error
        return [str(info[4][0]).split("%")[0] for info in infos]


class NameserverResolver:
    """Straight to the given name servers ("127.0.0.1:5353"), with dnspython."""

    def __init__(self, nameservers: str) -> None:
        self._resolver = make_resolver(parse_nameservers(nameservers))

    async def addresses(self, host: str) -> list[str]:
        return await host_addresses(self._resolver, host)


def resolver_for(settings: Settings) -> HostResolver:
    return NameserverResolver(settings.dns_nameservers) if settings.dns_nameservers else SystemResolver()


def public_address(address: IPAddress) -> bool:
    """Only addresses on the internet: no loopback, private, link-local, shared or reserved ranges."""
    return address.is_global


async def checked_addresses(resolver: HostResolver, host: str, allowed: AddressPolicy) -> list[str]:
    """The addresses of ``host`` (an IP literal is its own), each allowed; else InternalAddress."""
    try:
        addresses = [str(ipaddress.ip_address(host.strip("[]")))]
    except ValueError:
        addresses = await resolver.addresses(host)
    for address in addresses:
        if not allowed(ipaddress.ip_address(address)):
            raise InternalAddress(f"{host} resolves to an internal address; Marid will not call it.")
    return addresses


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """Resolves and checks each host once per connection, then connects to exactly those addresses."""

    def __init__(self, resolver: HostResolver, allowed: AddressPolicy) -> None:
        self._resolver = resolver
        self._allowed = allowed
        self._inner = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        addresses = await checked_addresses(self._resolver, host, self._allowed)
        failure: Exception | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(address, port, timeout, local_address, socket_options)
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as error:
                failure = error
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 (httpcore's interface)
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise httpcore.ConnectError("unix sockets are not allowed for identity providers")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class PinnedTransport(httpx.AsyncHTTPTransport):
    """httpx's own transport, but every connection goes through :class:`_PinnedBackend`."""

    def __init__(self, resolver: HostResolver, allowed: AddressPolicy, verify: ssl.SSLContext | bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        # httpx builds its pool without a way to pass a network backend; this is the same pool with one.
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            network_backend=_PinnedBackend(resolver, allowed),
        )


@dataclass(frozen=True)
class AddressGuard:
    """Which addresses a provider may have (``allowed``), found with ``resolver``; ``verify`` for TLS."""

    resolver: HostResolver
    allowed: AddressPolicy = public_address
    verify: ssl.SSLContext | bool = field(default=True)

    def transport(self) -> httpx.AsyncBaseTransport:
        return PinnedTransport(self.resolver, self.allowed, self.verify)
