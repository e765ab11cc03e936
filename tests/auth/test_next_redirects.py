"""``next=`` never sends the browser off-site, never breaks the response, never answers 500 (issue 8, defect 8).

The attack: ``next=/\\t/evil.example`` passed into ``HX-Redirect`` as is; browsers drop tabs and newlines from
URLs, so they followed ``//evil.example`` off-site. A newline in ``next`` made an invalid header (the server
dropped the connection), and a full-width dot (U+3002, ``%E3%80%82``) could not be encoded in a header: a 500.

Every ``Location`` and ``HX-Redirect`` made from a ``next`` goes through one normalising function now; these
tests drive it through the real login flow, as a plain form and as htmx.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urljoin, urlsplit

import pytest
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.web.redirects import local_path
from tests.account.helpers import turn_on_2fa
from tests.helpers import STRONG_PASSWORD, csrf_of, http_client, log_in, make_user

ORIGIN = "http://testserver"
HOSTILE = [
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\t//evil.example",
    " //evil.example",
    "/\\evil.example",
    "/\u3002/evil.example",
    "//evil\u3002example",
    "/\u3002evil.example",
    "/\uff0f/evil.example",
    "/%09/evil.example",
    "/\x00/evil.example",
    "javascript:alert(1)",
    "/ok\u2028/evil.example",
    "https:evil.example",
    "/" + "a" * 5000,
]


def as_a_browser_reads_it(value: str) -> str:
    """Where a browser goes for this Location (WHATWG URL parsing, roughly): it strips leading and trailing C0
    controls and spaces, removes every tab and newline, and reads a backslash as a slash."""
    cleaned = re.sub(r"[\t\n\r]", "", value.strip("".join(map(chr, range(0x21)))))
    return urljoin(ORIGIN + "/login", cleaned.replace("\\", "/"))


def assert_stays_home(value: str) -> None:
    assert value.isascii() and value.isprintable(), repr(value)
    assert value.startswith("/") and not value.startswith(("//", "/\\")), repr(value)
    target = urlsplit(as_a_browser_reads_it(value))
    assert (target.scheme, target.netloc) == ("http", "testserver"), repr(value)


@pytest.mark.parametrize("target", HOSTILE)
def test_the_normaliser_keeps_every_target_at_home(target: str) -> None:
    assert_stays_home(local_path(target))


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("/w/team?tab=members#top", "/w/team?tab=members#top"),
        ("/invite/abc123", "/invite/abc123"),
        ("/w/caf\u00e9", "/w/caf%C3%A9"),
        ("", "/"),
        (None, "/"),
    ],
)
def test_the_normaliser_keeps_ordinary_paths(target: str | None, expected: str) -> None:
    assert local_path(target) == expected


@pytest.fixture
def client(settings: Settings) -> TestClient:
    with http_client(create_app(settings)) as test_client:
        yield test_client  # type: ignore[misc]


def _login(client: TestClient, email: str, target: str, *, htmx: bool) -> tuple[int, str]:
    token = csrf_of(client.get("/login").text)
    headers = {"HX-Request": "true"} if htmx else {}
    response = client.post(
        "/login",
        data={"csrf_token": token, "email": email, "password": STRONG_PASSWORD, "next": target},
        headers=headers,
    )
    assert response.status_code < 500, response.text
    if htmx:
        assert response.status_code == 204, response.text
        return response.status_code, response.headers["HX-Redirect"]
    assert response.status_code == 303, response.text
    return response.status_code, response.headers["location"]


@pytest.mark.parametrize("htmx", [False, True], ids=["form", "htmx"])
async def test_signing_in_with_a_hostile_next_stays_on_site(client: TestClient, db: Database, htmx: bool) -> None:
    user = await make_user(db, f"next-{secrets.token_hex(3)}")
    for target in HOSTILE:
        client.cookies.clear()
        _status, location = _login(client, user.email, target, htmx=htmx)
        assert_stays_home(location)
        # Already signed in: the login and sign-up pages pass ``next`` on at once.
        headers = {"HX-Request": "true"} if htmx else {}
        for page in ("/login", "/signup"):
            again = client.get(page, params={"next": target}, headers=headers)
            if "\x00" in target:  # refused before any route (app.web.input_guard)
                assert again.status_code == 400
                continue
            assert again.status_code in (204, 303), again.text
            assert_stays_home(again.headers["HX-Redirect" if htmx else "location"])


async def test_the_two_factor_step_keeps_next_safe(client: TestClient, db: Database, settings: Settings) -> None:
    import pyotp

    user = await make_user(db, f"next2fa-{secrets.token_hex(3)}")
    secret, _codes = await turn_on_2fa(db, settings, user.id)
    for target in ["/\t/evil.example", "/\u3002evil.example", "/\n/evil.example"]:
        client.cookies.clear()
        token = csrf_of(client.get("/login").text)
        first = client.post(
            "/login", data={"csrf_token": token, "email": user.email, "password": STRONG_PASSWORD, "next": target}
        )
        assert first.headers["location"] == "/login/2fa"
        page = client.get("/login/2fa")
        code = pyotp.TOTP(secret).now()
        done = client.post(
            "/login/2fa", data={"csrf_token": csrf_of(page.text), "code": code}, headers={"HX-Request": "true"}
        )
        assert done.status_code == 204, done.text
        assert_stays_home(done.headers["HX-Redirect"])
        # A TOTP code works once; wait for the next one rather than reuse it.
        async with db.public_session() as session:
            from sqlalchemy import update

            from app.auth.models import User

            await session.execute(update(User).where(User.id == user.id).values(totp_last_step=None))


async def test_a_normal_next_still_works(client: TestClient, db: Database) -> None:
    user = await make_user(db, f"nextok-{secrets.token_hex(3)}")
    log_in(client, user.email)
    client.cookies.clear()
    for htmx in (False, True):
        client.cookies.clear()
        _status, location = _login(client, user.email, "/account/sessions?x=1", htmx=htmx)
        assert location == "/account/sessions?x=1"
