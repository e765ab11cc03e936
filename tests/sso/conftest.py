"""Fixtures of the SSO tests: a live Marid whose base URL is its real address, and real OpenID providers.

The provider is oidc-provider (the certified Node.js implementation, tests/oidc/idp.mjs) on a free loopback
port, with one confidential client registered for the live Marid's exact callback URL. Each provider keeps its
state in memory, so a test that needs a clean provider (or a misbehaving one) starts its own.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from app.embedded.util import free_port, stop_process
from tests.servers import _ready, web_server

OIDC_DIR = Path(__file__).resolve().parent.parent / "oidc"
CLIENT_ID = "marid"
CLIENT_SECRET = "marid-test-client-secret"


def _wait(url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not _ready(url):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not start (exit code {process.poll()})")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def marid(server_env: dict[str, str]) -> Iterator[str]:
    """`marid web` on a free port, with MARID_BASE_URL set to it: the redirect URI it sends is its own."""
    with web_server(server_env) as base:
        yield base


StartProvider = Callable[..., str]


@pytest.fixture
def providers(tmp_path: Path) -> Iterator[StartProvider]:
    """Factory: ``providers(redirect_uri, email_domain=..., **IDP_* env)`` starts a provider; returns its issuer."""
    if shutil.which("node") is None or not (OIDC_DIR / "node_modules" / "oidc-provider").is_dir():
        pytest.fail("the SSO tests need Node.js >= 20.18 and `npm ci` in tests/oidc (scripts/test does both)")
    processes: list[subprocess.Popen[bytes]] = []

    def start(redirect_uri: str, email_domain: str = "example.test", **idp_env: str) -> str:
        port = free_port()
        issuer = f"http://127.0.0.1:{port}"
        env = {
            **os.environ,
            "IDP_CLIENT_ID": CLIENT_ID,
            "IDP_CLIENT_SECRET": CLIENT_SECRET,
            "IDP_REDIRECT_URIS": redirect_uri,
            "IDP_EMAIL_DOMAIN": email_domain,
            **idp_env,
        }
        with open(tmp_path / f"idp-{port}.log", "ab") as log:
            process = subprocess.Popen(
                ["node", str(OIDC_DIR / "idp.mjs"), str(port)], env=env, stdout=log, stderr=subprocess.STDOUT
            )
        processes.append(process)
        _wait(f"{issuer}/.well-known/openid-configuration", process, "oidc-provider")
        return issuer

    yield start
    for process in reversed(processes):
        stop_process(process, timeout=5)


@pytest.fixture
def start_provider(marid: str, providers: StartProvider) -> StartProvider:
    """Factory: ``start_provider(email_domain=..., **IDP_* env)``: a provider that knows the live Marid."""

    def start(email_domain: str = "example.test", **idp_env: str) -> str:
        return providers(f"{marid}/sso/callback", email_domain, **idp_env)

    return start


def other_client(redirect: str) -> str:
    """IDP_EXTRA_CLIENTS registering another relying party, whose id a faulty provider puts in ``aud``."""
    return json.dumps([{"client_id": "other-rp", "client_secret": "other-secret", "redirect_uris": [redirect]}])
