"""``marid dev``: private Postgres and Redis under ./.marid, migrations, the web app and a worker per queue.

Children run in their own process group, so Ctrl-C reaches only this supervisor, which stops them in order
(web and workers first, then Redis, then Postgres). Each child also carries a parent-death signal, so even a
SIGKILL of the supervisor leaves no orphans. Data stays in the folder between runs.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from types import FrameType

from app.config import Settings
from app.embedded import EmbeddedPostgres, EmbeddedRedis
from app.embedded.util import child_command, free_port, port_is_free, stop_process
from app.llm.scripted import command as scripted_command
from app.queues import Queue
from app.sandbox.configured import local_runtime
from app.security.crypto import Keyring
from app.tenants.migrate import run_migrate


def _dev_secrets(data_dir: Path) -> dict[str, str]:
    """Random keys made on first start and kept, so sessions and encrypted data survive a restart."""
    path = data_dir / "dev-secrets.json"
    values: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    missing: dict[str, Callable[[], str]] = {
        "MARID_SECRET_KEY": lambda: secrets.token_urlsafe(48),
        "MARID_ENCRYPTION_KEY": lambda: base64.urlsafe_b64encode(secrets.token_bytes(32)).decode(),
        # The demo model's key (a data folder made before the demo model gets one on its next start).
        "MARID_DEMO_LLM_KEY": lambda: "sk-demo-" + secrets.token_urlsafe(24),
    }
    if any(name not in values for name in missing):
        values = {name: values.get(name) or make() for name, make in missing.items()} | values
        path.write_text(json.dumps(values))
        path.chmod(0o600)
    return values


def _start_demo_model(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """The scripted demo model (app.llm.scripted) on a free port; its key stays out of the process list."""
    port = free_port()
    child = subprocess.Popen(
        child_command(scripted_command(port=port)),
        env={**env, "MARID_SCRIPTED_LLM_KEY": env["MARID_DEMO_LLM_KEY"]},
        process_group=0,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not _ready(url + "/healthz"):
        if time.monotonic() > deadline or child.poll() is not None:
            raise RuntimeError("the demo model (the scripted LLM server) did not start")
        time.sleep(0.1)
    return child, url + "/v1"


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


class _Stop(Exception):
    pass


def run_dev(*, port: int, data_dir: str | Path) -> int:
    data = Path(data_dir).resolve()
    data.mkdir(parents=True, exist_ok=True)
    if not port_is_free(port):
        print(f"marid dev: port {port} is in use; pass --port N to use another.", file=sys.stderr)
        return 2

    def on_signal(signum: int, frame: FrameType | None) -> None:
        raise _Stop

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    postgres = EmbeddedPostgres(data / "postgres")
    redis = EmbeddedRedis(data / "redis")
    children: list[subprocess.Popen[bytes]] = []
    try:
        print(f"Starting PostgreSQL and Redis in {data} ...", file=sys.stderr)
        postgres.start()
        redis.start()
        database_url = asyncio.run(postgres.ensure_database())
        env = {
            **os.environ,
            **_dev_secrets(data),
            # Only this command runs Marid in dev mode with the dev routes (the mailbox); every other command is
            # production unless its environment says otherwise.
            "MARID_ENV": "dev",
            "MARID_DEV_ROUTES": "1",
            "MARID_DATABASE_URL": database_url,
            "MARID_REDIS_URL": redis.url,
            "MARID_BASE_URL": f"http://127.0.0.1:{port}",
            # Steps' files and the sandboxes' state live with the rest of the data (unless configured elsewhere).
            "MARID_SANDBOX_FILES_DIR": os.environ.get("MARID_SANDBOX_FILES_DIR", str(data / "files")),
            "MARID_SANDBOX_STATE_DIR": os.environ.get("MARID_SANDBOX_STATE_DIR", str(data / "sandbox")),
        }
        os.environ.update(env)
        sandbox_settings = Settings()
        if sandbox_settings.sandbox_runner == "local":
            # Built once per version of agent-runtime/ (pip, some seconds); the workers then find it ready.
            print("Preparing the sandboxes' agent runtime ...", file=sys.stderr)
            local_runtime(sandbox_settings)
        if asyncio.run(run_migrate(database_url, keyring=Keyring(env["MARID_ENCRYPTION_KEY"]))) != 0:
            return 1
        # The demo model first: new workspaces get it as a provider ("Demo model (scripted, not an AI)").
        try:
            demo, env["MARID_DEMO_LLM_URL"] = _start_demo_model(env)
        except RuntimeError as error:
            print(f"marid dev: {error}; see the messages above.", file=sys.stderr)
            return 1
        children.append(demo)
        # A worker process per queue, as compose runs them: a long job that blocks its process for a moment
        # (a bug, a slow library) holds up only its own queue, never mail.
        commands = {"web": ["web", "--port", str(port)]}
        commands |= {f"worker-{queue}": ["worker", "--queue", queue.value] for queue in Queue}
        for argv in commands.values():
            children.append(  # after the demo model, children[0]
                subprocess.Popen(child_command([sys.executable, "-m", "app.cli", *argv]), env=env, process_group=0)
            )
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while not _ready(base + "/readyz"):
            if time.monotonic() > deadline or any(child.poll() is not None for child in children):
                print("marid dev: the web app did not start; see the messages above.", file=sys.stderr)
                return 1
            time.sleep(0.1)
        assert postgres.process is not None and redis.process is not None
        runtime = {
            "url": base,
            "database_url": database_url,
            "redis_url": redis.url,
            "demo_llm_url": env["MARID_DEMO_LLM_URL"],
            "pids": {
                "postgres": postgres.process.pid,
                "redis": redis.process.pid,
                "demo-model": demo.pid,
                **{name: child.pid for name, child in zip(commands, children[1:], strict=True)},
            },
        }
        # Where this run's servers are, for tools and tests (the ports change at every start).
        (data / "dev.json").write_text(json.dumps(runtime, indent=2))
        print(f"\n  Marid is running at {base}   (Ctrl-C to stop)\n", file=sys.stderr, flush=True)
        while all(child.poll() is None for child in children):
            time.sleep(0.25)
        print("marid dev: a process exited unexpectedly; stopping.", file=sys.stderr)
        return 1
    except _Stop:
        print("\nStopping Marid ...", file=sys.stderr)
        return 0
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for child in children:
            stop_process(child, signal.SIGTERM)
        redis.stop()
        postgres.stop()
        (data / "dev.json").unlink(missing_ok=True)
        print("Stopped.", file=sys.stderr)
