"""The scripted server as its own process, the way ``marid dev`` runs it: scripts from a YAML file, more over the
admin endpoints, the request log read back, and the key kept out of the command line."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import openai
import pytest

from app.embedded.util import free_port, stop_process
from app.llm.scripted import HttpError, Reply, Script, ScriptedAdmin, ScriptedServer, command, load_script_file

KEY = "sk-dev-scripted"
SCRIPT_FILE = """
scripts:
  - model: yaml-model
    turns:
      - match: {last_user_contains: weather}
        reply: Sunny, as scripted.
        times: null
      - reply:
          tool_calls: [{name: ls, arguments: {path: .}}]
          finish_reason: tool_calls
  - api_key: sk-other-workspace
    turns:
      - fault: {kind: http_error, status: 429, retry_after: 30}
        times: null
"""
USER: list[Any] = [{"role": "user", "content": "How is the weather?"}]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@pytest.fixture
def script_file(tmp_path: Path) -> Path:
    path = tmp_path / "scripts.yaml"
    path.write_text(SCRIPT_FILE)
    return path


@pytest.fixture
def process_url(script_file: Path) -> Iterator[str]:
    port = free_port()
    argv = command(port=port, script_files=[script_file])
    assert KEY not in argv
    child = subprocess.Popen(argv, env={**os.environ, "MARID_SCRIPTED_LLM_KEY": KEY})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while not _healthy(url):
            assert child.poll() is None and time.monotonic() < deadline, "the scripted server did not start"
            time.sleep(0.05)
        yield url
    finally:
        stop_process(child)


def test_a_server_process_answers_from_files_and_admin_scripts(process_url: str) -> None:
    client = openai.OpenAI(base_url=f"{process_url}/v1", api_key=KEY, max_retries=0)
    assert client.chat.completions.create(model="yaml-model", messages=USER).choices[0].message.content == (
        "Sunny, as scripted."
    )
    call = client.chat.completions.create(model="yaml-model", messages=[{"role": "user", "content": "list"}])
    assert call.choices[0].message.tool_calls is not None
    with pytest.raises(openai.RateLimitError):
        client.with_options(api_key="sk-other-workspace").chat.completions.create(model="demo", messages=USER)
    with pytest.raises(openai.AuthenticationError):
        client.with_options(api_key="sk-wrong").chat.completions.create(model="demo", messages=USER)

    with ScriptedAdmin(process_url, KEY) as admin:
        admin.register("added", Script.sequence(Reply(text="added over HTTP"), HttpError(status=503)))
        assert client.chat.completions.create(model="added", messages=USER).choices[0].message.content == (
            "added over HTTP"
        )
        with pytest.raises(openai.InternalServerError):
            client.chat.completions.create(model="added", messages=USER)
        recorded = admin.requests()
        assert [r["model"] for r in recorded][-2:] == ["added", "added"]
        assert recorded[0]["protocol"] == "openai" and recorded[0]["body"]["messages"] == USER
        admin.clear_requests()
        assert admin.requests() == []
        admin.unregister(model="added")
        with pytest.raises(openai.NotFoundError):
            client.chat.completions.create(model="added", messages=USER)

    with ScriptedAdmin(process_url, "sk-wrong") as intruder, pytest.raises(httpx.HTTPStatusError) as refused:
        intruder.register("evil", Script.always(Reply(text="x")))
    assert refused.value.response.status_code == 401
    bad = httpx.post(f"{process_url}/_scripted/scripts", json={"turns": []}, headers={"authorization": f"Bearer {KEY}"})
    assert bad.status_code == 422


def test_script_files_load_in_process_too(script_file: Path) -> None:
    documents = load_script_file(script_file)
    assert [(d.model, d.api_key) for d in documents] == [("yaml-model", None), (None, "sk-other-workspace")]
    with ScriptedServer(demo=False) as server, openai.OpenAI(base_url=server.openai_base_url, api_key="x") as client:
        server.load(script_file)
        assert [m.id for m in client.models.list()] == ["yaml-model"]
