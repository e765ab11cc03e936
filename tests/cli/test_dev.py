"""`marid dev`: one command starts everything, Ctrl-C stops everything, a restart keeps the data."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import redis

from app.db import Database
from app.embedded import free_port
from app.queues import Queue
from app.security.crypto import Keyring
from app.tenants.models import Workspace
from app.workspaces.service import create_workspace
from tests.sandbox.conftest import IMAGE_CACHE


def _start(data_dir: Path, port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        [sys.executable, "-m", "app.cli", "dev", "--port", str(port), "--data-dir", str(data_dir)],
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
        # The sandboxes' agent runtime is built once per machine, not once per data directory.
        env={**os.environ, "MARID_SANDBOX_RUNTIME_DIR": str(IMAGE_CACHE / "runtime")},
    )
    deadline = time.monotonic() + 90
    while f"Marid is running at http://127.0.0.1:{port}" not in log.read_text():
        assert process.poll() is None, log.read_text()
        assert time.monotonic() < deadline, log.read_text()
        time.sleep(0.1)
    return process


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie that its parent has not reaped yet is as good as gone.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except FileNotFoundError:
        return False


def _wait_gone(pids: list[int], timeout: float = 20) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(_alive(pid) for pid in pids):
        time.sleep(0.1)
    return [pid for pid in pids if _alive(pid)]


def _queues_served(redis_url: str, timeout: float = 30) -> bool:
    client = redis.Redis.from_url(redis_url)
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(client.exists(queue.arq_name + ":health-check") for queue in Queue):
                return True
            time.sleep(0.1)
        return False
    finally:
        client.close()


def _keyring(data_dir: Path) -> Keyring:
    """The master key `marid dev` made on first start and keeps in its data folder."""
    return Keyring(json.loads((data_dir / "dev-secrets.json").read_text())["MARID_ENCRYPTION_KEY"])


async def _create(database_url: str, keyring: Keyring) -> str:
    db = Database(database_url, pool_size=1, keyring=keyring)
    async with db.public_session() as session:
        workspace = await create_workspace(session, name="Kept", slug="kept")
    await db.dispose()
    return workspace.id


async def _still_there(database_url: str, workspace_id: str, keyring: Keyring) -> bool:
    db = Database(database_url, pool_size=1, keyring=keyring)
    async with db.public_session() as session:
        kept = await session.get(Workspace, workspace_id)
    async with db.tenant_session(workspace_id) as session:
        await session.connection()  # the schema and its role are back too
    await db.dispose()
    return kept is not None and kept.slug == "kept"


def test_dev_start_stop_restart_keeps_data(tmp_path: Path) -> None:
    # The project folder of a user who cloned as root under a private home: closed to others.
    home = Path(tempfile.mkdtemp(prefix="marid-home-"))
    os.chmod(home, 0o700)
    data_dir = home / "project" / ".marid"
    log = tmp_path / "dev.log"
    port = free_port()

    first = _start(data_dir, port, log)
    runtime = json.loads((data_dir / "dev.json").read_text())
    pids = list(runtime["pids"].values())
    with urllib.request.urlopen(runtime["url"] + "/readyz") as response:
        assert json.load(response)["status"] == "ready"
    with urllib.request.urlopen(runtime["url"] + "/") as response:
        assert b"Marid" in response.read()
    # The dev mailbox exists here, and only here (production is the default for every other command).
    with urllib.request.urlopen(runtime["url"] + "/dev/mailbox") as response:
        assert b"Dev mailbox" in response.read()
    # A worker process per queue, each polling its own queue (as compose runs them).
    assert {"web", "worker-short", "worker-long"} <= set(runtime["pids"])
    # The demo model (the scripted LLM server), its key kept with the other dev secrets, out of the process list.
    assert "demo-model" in runtime["pids"]
    with urllib.request.urlopen(runtime["demo_llm_url"].removesuffix("/v1") + "/healthz") as response:
        assert response.status == 200
    demo_key = json.loads((data_dir / "dev-secrets.json").read_text())["MARID_DEMO_LLM_KEY"]
    assert demo_key not in Path(f"/proc/{runtime['pids']['demo-model']}/cmdline").read_text()
    assert _queues_served(runtime["redis_url"]), "a worker of each queue writes its health key"
    workspace_id = asyncio.run(_create(runtime["database_url"], _keyring(data_dir)))

    first.send_signal(signal.SIGINT)
    assert first.wait(60) == 0
    assert _wait_gone(pids) == [], "Ctrl-C leaves no process behind"
    assert "Stopped." in log.read_text()

    second = _start(data_dir, port, tmp_path / "dev-second.log")
    runtime = json.loads((data_dir / "dev.json").read_text())
    assert asyncio.run(_still_there(runtime["database_url"], workspace_id, _keyring(data_dir)))

    # Even a supervisor killed without warning takes its children with it.
    pids = list(runtime["pids"].values())
    second.kill()
    second.wait()
    assert _wait_gone(pids, timeout=30) == []
    shutil.rmtree(home, ignore_errors=True)


def test_dev_says_when_the_port_is_taken(tmp_path: Path) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "app.cli", "dev", "--port", str(port), "--data-dir", str(tmp_path / "d")],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert result.returncode == 2
    assert f"port {port} is in use; pass --port N" in result.stderr
