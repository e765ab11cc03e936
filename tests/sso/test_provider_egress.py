"""Issue 8, last bullet of part 8, from the attacker's side: DNS rebinding against the SSO provider check.

An admin's issuer names a host whose DNS (run by the attacker) answers a public address when Marid checks it
and an internal one a moment later. Marid must connect to the address it checked, never resolve again.

Everything stays on this machine: the "public" provider is 127.0.0.2 (the address policy of these tests
allows only that one, standing in for the internet), the "internal" service 127.0.0.3, and the attacker's
DNS is the test DNS server. The provider speaks https with a certificate for its name, so the test also
proves that connecting by address keeps the name for SNI and certificate checks.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import secrets
import socket
import ssl
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from app.sso.egress import AddressGuard, NameserverResolver
from app.sso.oidc import OidcError, ProviderClient
from tests.dns_server import TestDns

PUBLIC, INTERNAL = "127.0.0.2", "127.0.0.3"

pytestmark = pytest.mark.timeout(30)


def _certificates(name: str, folder: Path) -> tuple[Path, Path, Path]:
    """A test CA and a certificate for ``name`` signed by it: (ca.pem, cert.pem, key.pem)."""
    now = datetime.datetime.now(datetime.UTC)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Marid test CA")])
    ca = (
        x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    leaf = (
        x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5)).not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )  # fmt: skip
    paths = folder / "ca.pem", folder / "cert.pem", folder / "key.pem"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


@contextmanager
def _provider(issuer: str, port: int, cert: Path, key: Path) -> Iterator[list[str]]:
    """An https "provider" on PUBLIC:port that serves a discovery document; yields the paths it was asked for."""
    asked: list[str] = []
    document = {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/auth",
        "token_endpoint": f"{issuer}/token",
        "jwks_uri": f"{issuer}/jwks",
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256"],
    }

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(f"{self.headers['Host']} {self.path}")
            body = json.dumps(document).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer((PUBLIC, port), Handler)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield asked
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def _internal_service(port: int) -> Iterator[list[str]]:
    """Something internal on INTERNAL:port that must never be reached; yields who connected."""
    listener = socket.create_server((INTERNAL, port))
    listener.settimeout(0.1)
    reached: list[str] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, peer = listener.accept()
            except TimeoutError:
                continue
            reached.append(str(peer))
            connection.close()

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield reached
    finally:
        stop.set()
        thread.join()
        listener.close()


def _free_port_on_both() -> int:
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind((PUBLIC, 0))
            port = int(probe.getsockname()[1])
        try:
            with socket.socket() as other:
                other.bind((INTERNAL, port))
            return port
        except OSError:
            continue
    raise RuntimeError("no port free on both addresses")


def _guard(dns: TestDns, ca: Path) -> AddressGuard:
    # The only "public" address in this test is PUBLIC; everything else counts as internal.
    return AddressGuard(
        NameserverResolver(dns.address),
        allowed=lambda address: address == ipaddress.ip_address(PUBLIC),
        verify=ssl.create_default_context(cafile=str(ca)),
    )


async def test_marid_connects_to_the_address_it_checked_not_to_a_second_answer(dns: TestDns, tmp_path: Path) -> None:
    name = f"idp-{secrets.token_hex(4)}.rebind.test"
    port = _free_port_on_both()
    issuer = f"https://{name}:{port}"
    ca, cert, key = _certificates(name, tmp_path)
    # The attacker's DNS: the public address to the first question, the internal one to every later one.
    dns.zone.set_addresses(name, [PUBLIC], [INTERNAL])

    with _provider(issuer, port, cert, key) as asked, _internal_service(port) as reached:
        client = ProviderClient(production=True, guard=_guard(dns, ca))
        metadata = await client.discover(issuer, fresh=True)

    assert metadata.issuer == issuer
    assert reached == []
    assert asked == [f"{name}:{port} /.well-known/openid-configuration"]  # the name, as Host (and SNI)
    assert dns.zone.queries_for(name).count("A") == 1


async def test_a_name_that_answers_an_internal_address_is_refused_before_any_connection(
    dns: TestDns, tmp_path: Path
) -> None:
    name = f"idp-{secrets.token_hex(4)}.rebind.test"
    port = _free_port_on_both()
    ca, _, _ = _certificates(name, tmp_path)
    dns.zone.set_addresses(name, [INTERNAL])
    with _internal_service(port) as reached:
        client = ProviderClient(production=True, guard=_guard(dns, ca))
        with pytest.raises(OidcError) as refused:
            await client.discover(f"https://{name}:{port}", fresh=True)
    assert refused.value.reason == "internal_address"
    assert reached == []


async def test_one_internal_address_among_public_ones_is_refused(dns: TestDns, tmp_path: Path) -> None:
    name = f"idp-{secrets.token_hex(4)}.rebind.test"
    port = _free_port_on_both()
    ca, cert, key = _certificates(name, tmp_path)
    dns.zone.set_addresses(name, [PUBLIC, INTERNAL])
    with _provider(f"https://{name}:{port}", port, cert, key) as asked, _internal_service(port) as reached:
        client = ProviderClient(production=True, guard=_guard(dns, ca))
        with pytest.raises(OidcError) as refused:
            await client.discover(f"https://{name}:{port}", fresh=True)
    assert refused.value.reason == "internal_address"
    assert asked == [] and reached == []
