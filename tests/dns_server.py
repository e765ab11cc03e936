"""A real DNS server for the tests: dnslib answering UDP queries on 127.0.0.1 from a zone the tests edit.

Marid resolves through it (``MARID_DNS_NAMESERVERS``) with dnspython, over the DNS protocol: a domain is
proven by publishing a TXT record here, exactly as an admin would at their DNS host. Answers have TTL 0, so
an edit is seen by the next query. A name can also answer a sequence of addresses, one answer per query,
which is how a DNS-rebinding attacker behaves.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from dnslib import AAAA, QTYPE, RCODE, RR, TXT, A, DNSRecord
from dnslib.server import BaseResolver, DNSHandler, DNSLogger, DNSServer


class Zone(BaseResolver):  # type: ignore[misc]
    """TXT and address records by lower-case name (no trailing dot). Thread-safe: the server has its own thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._txt: dict[str, list[str]] = {}
        # Each query takes the first answer off the list; the last one stays.
        self._addresses: dict[str, list[list[str]]] = {}
        self.queries: list[tuple[str, str]] = []

    def publish_txt(self, name: str, value: str) -> None:
        with self._lock:
            self._txt.setdefault(_key(name), []).append(value)

    def remove_txt(self, name: str, value: str | None = None) -> None:
        with self._lock:
            values = self._txt.get(_key(name), [])
            self._txt[_key(name)] = [] if value is None else [v for v in values if v != value]

    def set_addresses(self, name: str, *answers: list[str]) -> None:
        """``name`` answers ``answers[0]`` to the first query, ``answers[1]`` to the next, ... then the last."""
        with self._lock:
            self._addresses[_key(name)] = [list(answer) for answer in answers]

    def queries_for(self, name: str) -> list[str]:
        with self._lock:
            return [kind for queried, kind in self.queries if queried == _key(name)]

    def resolve(self, request: DNSRecord, handler: DNSHandler) -> DNSRecord:
        reply = request.reply()
        name = _key(str(request.q.qname))
        kind = QTYPE[request.q.qtype]
        with self._lock:
            self.queries.append((name, kind))
            known = name in self._txt or name in self._addresses
            if kind == "TXT":
                for value in self._txt.get(name, []):
                    reply.add_answer(RR(name, QTYPE.TXT, rdata=TXT(value), ttl=0))
            elif kind in ("A", "AAAA") and name in self._addresses:
                answers = self._addresses[name]
                current = answers.pop(0) if len(answers) > 1 else answers[0]
                for address in current:
                    if ":" in address and kind == "AAAA":
                        reply.add_answer(RR(name, QTYPE.AAAA, rdata=AAAA(address), ttl=0))
                    elif ":" not in address and kind == "A":
                        reply.add_answer(RR(name, QTYPE.A, rdata=A(address), ttl=0))
        if not known:
            reply.header.rcode = RCODE.NXDOMAIN
        return reply


def _key(name: str) -> str:
    return name.lower().rstrip(".")


class TestDns:
    """The running server: its zone and its address in ``MARID_DNS_NAMESERVERS`` form."""

    __test__ = False  # not a test class, whatever pytest thinks of the name

    def __init__(self, zone: Zone, port: int) -> None:
        self.zone = zone
        self.port = port

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"


@contextmanager
def dns_server() -> Iterator[TestDns]:
    zone = Zone()
    # Port 0: the kernel picks a free UDP port, so parallel runs never collide.
    server = DNSServer(zone, address="127.0.0.1", port=0, logger=DNSLogger(logf=lambda _line: None))
    server.start_thread()
    try:
        yield TestDns(zone, int(server.server.server_address[1]))
    finally:
        server.stop()
        server.server.server_close()
