"""DNS for single sign-on, with dnspython: a domain's verification TXT record, and a host's addresses.

Queries go to the name servers in ``MARID_DNS_NAMESERVERS`` when it is set, else to the system's resolver
configuration (``/etc/resolv.conf``). Nothing is cached here: a verification must see the record as it is now.
"""

from __future__ import annotations

import dns.asyncresolver
import dns.exception
import dns.nameserver
import dns.resolver

RECORD_PREFIX = "_marid-verify."
VALUE_PREFIX = "marid-domain-verification="
LOOKUP_SECONDS = 5.0


class DnsLookupError(Exception):
    """DNS did not answer (time-out, no reachable server, refused); the message says so for a person."""


def record_name(domain: str) -> str:
    """Where the verification record of ``domain`` lives."""
    return RECORD_PREFIX + domain


def record_value(token: str) -> str:
    return VALUE_PREFIX + token


def make_resolver(servers: list[tuple[str, int]]) -> dns.asyncresolver.Resolver:
    """A resolver asking ``servers`` ((address, port) pairs); with none, the system's configured ones."""
    if not servers:
        try:
            resolver = dns.asyncresolver.Resolver()
        except dns.resolver.NoResolverConfiguration as error:
            raise DnsLookupError("This server has no DNS configuration; set MARID_DNS_NAMESERVERS.") from error
    else:
        resolver = dns.asyncresolver.Resolver(configure=False)
        resolver.nameservers = [dns.nameserver.Do53Nameserver(address, port) for address, port in servers]
    resolver.lifetime = LOOKUP_SECONDS
    return resolver


async def txt_values(resolver: dns.asyncresolver.Resolver, name: str) -> list[str]:
    """The TXT strings at ``name`` (each record's parts joined, as RFC 7208 reads them); [] when there are none."""
    try:
        answer = await resolver.resolve(name, "TXT", search=False)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.exception.Timeout) as error:
        raise DnsLookupError(f"DNS did not answer for {name} ({type(error).__name__}). Try again later.") from error
    except dns.exception.DNSException as error:
        raise DnsLookupError(f"DNS lookup for {name} failed ({type(error).__name__}).") from error
    return [b"".join(record.strings).decode("utf-8", "replace") for record in answer]


async def host_addresses(resolver: dns.asyncresolver.Resolver, host: str) -> list[str]:
    """Every IPv4 and IPv6 address of ``host``; raises DnsLookupError when it has none."""
    found: list[str] = []
    for kind in ("A", "AAAA"):
        try:
            answer = await resolver.resolve(host, kind, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            continue
        except dns.exception.DNSException as error:
            raise DnsLookupError(f"Could not resolve {host} ({type(error).__name__}).") from error
        found += [record.address for record in answer]
    if not found:
        raise DnsLookupError(f"Could not resolve {host}.")
    return found
