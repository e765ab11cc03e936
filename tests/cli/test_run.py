"""``marid run`` against a live server and worker: start a run and follow it to the end (exit 0), list and get
it; a run cancelled while followed exits 1; a missing key, an unknown pipeline or a read-only key are clear
errors (exit 2 or 3) that start nothing."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import pytest

from app.config import Settings
from app.db import Database
from tests.apikeys.helpers import make_key
from tests.runs.stack import Stack, demo_workspace, run_stack


@pytest.fixture(scope="module")
def stack(server_env: dict[str, str], settings: Settings) -> Iterator[Stack]:
    with run_stack(server_env, settings) as running:
        yield running


def marid_run(stack: Stack, key: str, slug: str, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**stack.env, "MARID_URL": stack.base_url, "MARID_API_KEY": key, "COLUMNS": "120"}
    return subprocess.run(
        [sys.executable, "-m", "app.cli", "run", "--workspace", slug, *args],
        env=env, capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


async def test_start_follow_list_and_get(stack: Stack, db: Database) -> None:
    owner, workspace = await demo_workspace(db, stack, "cli-run")
    _, key = await make_key(db, workspace, owner, "owner", scope="write")
    done = marid_run(stack, key, workspace.slug, "start", "quick", "--task", "A save button that saves", "--follow")
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    # the run streamed in order: each step started, the demo model's tool calls, each step completed
    for step in ("SPEC", "BUILD", "CHECK"):
        assert f"▶ {step}" in out and f"✓ {step} completed" in out, out
    assert out.index("▶ SPEC") < out.index("✓ SPEC") < out.index("▶ BUILD") < out.index("✓ CHECK")
    assert "🔧 write" in out and "🔧 complete" in out
    assert "completed: Quick v1, 3 steps done" in out
    run_id = out.split("Started run ", 1)[1].split(" ", 1)[0]

    listed = marid_run(stack, key, workspace.slug, "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [(r["id"], r["status"]) for r in json.loads(listed.stdout)] == [(run_id, "completed")]
    table = marid_run(stack, key, workspace.slug, "list")
    assert run_id in table.stdout and "completed" in table.stdout
    got = marid_run(stack, key, workspace.slug, "get", run_id, "--json")
    detail = json.loads(got.stdout)
    assert detail["status"] == "completed" and [s["step_id"] for s in detail["steps"]] == ["SPEC", "BUILD", "CHECK"]
    assert detail["outputs"]["check_verdict"] == "APPROVED"
    assert set(detail["outputs"]) == {"spec", "build_summary", "check_verdict"}
    human = marid_run(stack, key, workspace.slug, "get", run_id)
    assert human.returncode == 0 and "CHECK" in human.stdout


async def test_a_run_cancelled_while_followed_exits_non_zero(stack: Stack, db: Database) -> None:
    owner, workspace = await demo_workspace(db, stack, "cli-cancel")
    _, key = await make_key(db, workspace, owner, "owner", scope="write")
    env = {**stack.env, "MARID_URL": stack.base_url, "MARID_API_KEY": key}
    command = [sys.executable, "-m", "app.cli", "run", "--workspace", workspace.slug, "start", "engineering"]
    api = f"{stack.base_url}/api/v1/workspaces/{workspace.slug}/runs"
    code, out, err = await asyncio.to_thread(
        follow_and_cancel, [*command, "--task", "Build a todo app", "--follow"], env, api, key
    )
    assert code == 1, out + err
    assert "cancelled" in out


def follow_and_cancel(command: list[str], env: dict[str, str], api: str, key: str) -> tuple[int, str, str]:
    """Follow a run with the CLI and cancel it over the API once it is there; the CLI's exit code and output."""
    follower = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    headers = {"Authorization": f"Bearer {key}"}
    try:
        deadline = time.monotonic() + 60
        runs: list[dict[str, object]] = []
        while time.monotonic() < deadline and not runs:
            runs = httpx.get(api, headers=headers).json()["data"]
            time.sleep(0.2)
        assert runs, "the CLI started a run"
        cancelled = httpx.post(f"{api}/{runs[0]['id']}/cancel", headers=headers)
        assert cancelled.status_code == 200, cancelled.text
        out, err = follower.communicate(timeout=90)
    finally:
        if follower.poll() is None:
            follower.kill()
    return follower.returncode, out, err


async def test_errors_are_clear_and_start_nothing(stack: Stack, db: Database) -> None:
    owner, workspace = await demo_workspace(db, stack, "cli-errors", starter=None, quick=False)
    _, reader = await make_key(db, workspace, owner, "owner", scope="read")
    _, writer = await make_key(db, workspace, owner, "owner", scope="write")
    missing = marid_run(stack, "", workspace.slug, "list")
    assert missing.returncode == 2 and "MARID_API_KEY" in missing.stderr
    unknown = marid_run(stack, writer, workspace.slug, "start", "nope", "--task", "x")
    assert unknown.returncode == 3 and "No such pipeline" in unknown.stderr
    empty = marid_run(stack, writer, workspace.slug, "start", "nope", "--task", "  ")
    assert empty.returncode == 3 and "task: Say what the run should do." in empty.stderr
    read_only = marid_run(stack, reader, workspace.slug, "start", "nope", "--task", "x")
    assert read_only.returncode == 3 and "403" in read_only.stderr
    wrong = marid_run(stack, writer, "not-my-workspace", "list")
    assert wrong.returncode == 3 and "404" in wrong.stderr
    listed = marid_run(stack, writer, workspace.slug, "list", "--json")
    assert json.loads(listed.stdout) == []
