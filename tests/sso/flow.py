"""A whole single sign-on over HTTP, without a browser: Marid's /sso form in a TestClient, the real provider's
sign-in and consent pages in an httpx client of its own (the provider's cookies stay there), then the
provider's redirect back to Marid's callback in the same TestClient (whose state cookie must match).

The provider must know ``settings.base_url + "/sso/callback"`` as the redirect URI, which is where it sends
the browser; only the path and query of that address are replayed against the TestClient.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

import httpx
from httpx2 import Response
from starlette.testclient import TestClient

from tests.helpers import post_form


def provider_redirect(started: Response) -> str:
    """The provider URL a started sign-in sends the browser to (its Refresh header)."""
    assert started.status_code == 200, started.text
    return str(started.headers["refresh"]).split("url=", 1)[1]


def sign_in_at_provider(authorize_url: str, login: str) -> str:
    """The provider's Sign-in (any password) and consent pages; returns the address it sends the browser back to."""
    origin = "{0.scheme}://{0.netloc}".format(urlsplit(authorize_url))
    with httpx.Client(follow_redirects=False, timeout=10, trust_env=False) as browser:
        response = browser.get(authorize_url)
        for _ in range(20):
            if response.is_redirect:
                target = urljoin(str(response.url), response.headers["location"])
                if not target.startswith(origin):
                    return target
                response = browser.get(target)
                continue
            action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
            prompt = re.search(r'name="prompt" value="(\w+)"', response.text)
            assert action and prompt, f"unexpected provider page: {response.status_code} {response.text[:500]}"
            data = {"prompt": prompt.group(1)}
            if prompt.group(1) == "login":
                data |= {"login": login, "password": "any password"}
            response = browser.post(urljoin(str(response.url), action.group(1)), data=data)
    raise AssertionError("the provider never sent the browser back")


def back_at_marid(client: TestClient, callback: str) -> Response:
    parts = urlsplit(callback)
    return client.get(parts.path + (f"?{parts.query}" if parts.query else ""))


def sso(client: TestClient, identifier: str, login: str, *, page: str = "/sso", **fields: str) -> Response:
    """Continue with SSO from ``page`` as ``identifier``, sign in at the provider as ``login``; Marid's answer."""
    started = post_form(client, page, "/sso", {"identifier": identifier, **fields})
    return back_at_marid(client, sign_in_at_provider(provider_redirect(started), login))
