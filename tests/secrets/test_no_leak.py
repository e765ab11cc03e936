"""A secret's value never comes out: not on any page or fragment, not in any API answer, not in the audit log,
not on the live event stream, not in Redis, not in a log line (issue 11: "a test greps them").

Each value is unique, so finding even part of it anywhere is a leak. Pages and API operations come from the
application's own route table and operation registry, so a page added later is covered the day it exists.
"""

from __future__ import annotations

import asyncio
import logging
import re
import secrets
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from redis.asyncio import Redis

from app.api.operations import REGISTRY
from app.config import Settings
from app.db import Database
from app.embedded.util import free_port, stop_process
from app.main import create_app
from tests.api.helpers import api_client, make_team
from tests.helpers import csrf_of, http_client, log_in
from tests.live.sse_client import SSEReader
from tests.web.pages import fill, page_get_routes
from tests.workspaces.test_live import cookie_for


def secret_values() -> list[str]:
    return [f"leak{tag}_{secrets.token_hex(20)}" for tag in ("page", "api", "replaced", "patched")]


def pieces(value: str) -> list[str]:
    """The value and its random body: a leak of the body alone (say, a prefix stripped) counts too."""
    return [value, value.split("_", 1)[1], value.split("_", 1)[1][:16]]


def assert_clean(where: str, text: str, values: list[str]) -> None:
    for value in values:
        for piece in pieces(value):
            assert piece not in text, f"{where} shows (part of) a secret value"


async def redis_dump(settings: Settings) -> str:
    """Everything Redis holds (streams entry by entry, strings, hashes, lists, sets), as one text."""
    redis = Redis.from_url(settings.redis_url)
    parts: list[str] = []
    try:
        async for key in redis.scan_iter(count=1000):
            kind = (await redis.type(key)).decode()
            if kind == "stream":
                parts.append(repr(await redis.xrange(key)))
            elif kind == "string":
                parts.append(repr(await redis.get(key)))
            elif kind == "hash":
                parts.append(repr(await redis.hgetall(key)))
            elif kind == "list":
                parts.append(repr(await redis.lrange(key, 0, -1)))
            elif kind in ("set", "zset"):
                parts.append(repr(await (redis.smembers(key) if kind == "set" else redis.zrange(key, 0, -1))))
    finally:
        await redis.aclose()
    return "\n".join(parts)


async def test_no_page_answer_audit_entry_redis_key_or_log_line_holds_a_value(
    settings: Settings, db: Database, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # every logger...
    caplog.set_level(logging.INFO, logger="sqlalchemy.engine")  # ...SQL statements and their parameters included
    values = secret_values()
    team = await make_team(db, settings, f"leak-{secrets.token_hex(2)}")
    slug = team.workspace.slug
    api = f"/api/v1/workspaces/{slug}"
    answers: list[tuple[str, str]] = []
    with api_client(settings, team.cookies["owner"]) as client:
        client.post(f"{api}/agent-roster", json={"ids": ["sre", "architect"]})
        made = client.post(f"{api}/secrets", json={"name": "API_MADE", "value": values[1], "description": "by API"})
        assert made.status_code == 201, made.text
        answers.append(("POST secrets", made.text))
        api_secret = made.json()["id"]
        patched = client.patch(f"{api}/secrets/{api_secret}", json={"value": values[3], "description": "again"})
        assert patched.status_code == 200
        answers.append(("PATCH secret", patched.text))
        granted = client.put(f"{api}/secrets/{api_secret}/grants", json={"agents": ["sre"]})
        answers.append(("PUT grants", granted.text))
        clash = client.post(f"{api}/secrets", json={"name": "API_MADE", "value": values[1]})
        assert clash.status_code == 422
        answers.append(("POST clash", clash.text))

    app = create_app(settings)
    with http_client(app) as browser:
        log_in(browser, team.owner.email)
        page = browser.get(f"/w/{slug}/secrets")
        made_page = browser.post(
            f"/w/{slug}/secrets", data={"csrf_token": csrf_of(page.text), "name": "PAGE_MADE", "value": values[0]}
        )
        assert made_page.status_code == 303
        page_secret = made_page.headers["location"].rsplit("/", 1)[1]
        detail = browser.get(f"/w/{slug}/secrets/{page_secret}")
        token = csrf_of(detail.text)
        assert (
            browser.post(
                f"/w/{slug}/secrets/{page_secret}/value", data={"csrf_token": token, "value": values[2]}
            ).status_code
            == 303
        )
        browser.post(
            f"/w/{slug}/secrets/{page_secret}/grants", data={"csrf_token": token, "agents": ["sre", "architect"]}
        )
        # A refused form (the name is taken) comes back without the value that was typed.
        refused = browser.post(
            f"/w/{slug}/secrets", data={"csrf_token": token, "name": "PAGE_MADE", "value": values[0]}
        )
        assert refused.status_code == 422
        answers.append(("refused form", refused.text))

        # Every page and fragment, for the owner and for a viewer.
        for user in (team.owner, team.viewer):
            browser.cookies.clear()
            log_in(browser, user.email)
            for secret_id in (page_secret, api_secret):
                known = {"slug": slug, "secret_id": secret_id, "agent": "sre", "user_id": str(team.owner.id)}
                for path in page_get_routes(app.routes):
                    for headers in ({}, {"HX-Request": "true"}):
                        response = browser.get(fill(path, known), headers=headers)
                        answers.append((f"GET {path} as {user.email} {headers}", response.text))

    # Every API read, with the real ids.
    with api_client(settings, team.cookies["owner"]) as client:
        ids = {"slug": slug, "secret_id": api_secret, "agent": "sre", "user_id": str(team.owner.id)}
        for operation in REGISTRY:
            if operation.method != "GET":
                continue
            path = re.sub(r"\{(\w+)\}", lambda m: ids.get(m.group(1), str(uuid.uuid4())), operation.path)
            response = client.get(f"/api/v1{path}")
            answers.append((f"GET /api/v1{operation.path}", response.text))
        audit = client.get(f"{api}/audit?limit=100").json()
    actions = {entry["action"] for entry in audit["data"]}
    assert {"secret.created", "secret.value_replaced", "secret.grants_changed"} <= actions
    assert any("PAGE_MADE" in str(entry["details"]) for entry in audit["data"])  # named, by name

    assert len(answers) > 100
    for where, text in answers:
        assert_clean(where, text, values)
    assert_clean("the audit log API", str(audit), values)
    assert_clean("Redis (event streams, caches)", await redis_dump(settings), values)
    assert any("INSERT INTO" in record.getMessage() for record in caplog.records)  # SQL was logged
    assert_clean("the captured logs", caplog.text, values)


@contextmanager
def logging_web_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """`marid web` at debug level, everything it prints going to ``log``."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "web", "--port", str(port)],
            env={**env, "MARID_BASE_URL": base, "MARID_LOG_LEVEL": "debug"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 30
            while True:
                try:
                    with urllib.request.urlopen(base + "/readyz", timeout=1) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("marid web did not start")
                time.sleep(0.05)
            yield base
        finally:
            stop_process(process)


async def test_the_live_stream_and_the_server_log_never_carry_a_value(
    settings: Settings, db: Database, server_env: dict[str, str], tmp_path: Path
) -> None:
    values = secret_values()
    team = await make_team(db, settings, f"leaklive-{secrets.token_hex(2)}")
    slug = team.workspace.slug
    log = tmp_path / "web.log"
    with logging_web_server(server_env, log) as base:
        cookies = await cookie_for(db, settings, team.owner)
        async with httpx.AsyncClient(base_url=base, cookies=cookies, timeout=10) as client:
            request = client.build_request("GET", f"/w/{slug}/events?topics=activity")
            stream = await client.send(request, stream=True)
            assert stream.status_code == 200
            reader = SSEReader(stream.aiter_bytes())
            page = await client.get(f"/w/{slug}/secrets")
            token = csrf_of(page.text)
            made = await client.post(
                f"/w/{slug}/secrets", data={"csrf_token": token, "name": "LIVE", "value": values[0]}
            )
            assert made.status_code == 303, made.text
            location = made.headers["location"]
            replaced = await client.post(f"{location}/value", data={"csrf_token": token, "value": values[2]})
            assert replaced.status_code == 303
            api = await client.post(
                f"/api/v1/workspaces/{slug}/secrets",
                json={"name": "LIVE_API", "value": values[1]},
                headers={"X-CSRF-Token": token},
            )
            assert api.status_code == 201, api.text
            events = await reader.events(3, wait=10)
            await stream.aclose()
        texts = ["\n".join(message.data) for message in events]
        assert any("LIVE" in text for text in texts)  # the feed names the secret...
        for text in texts:
            assert_clean("the live event stream", text, values)  # ...never its value
        await asyncio.sleep(0.2)
    server_log = log.read_text(errors="replace")
    assert "Application startup complete" in server_log  # the log was captured
    assert_clean("the web server's log", server_log, values)
