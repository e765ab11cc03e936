"""Start Marid's own processes for a test, on free ports, and stop them by PID."""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

from app.embedded.util import free_port, stop_process


def _ready(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except OSError:
        return False


@contextmanager
def web_server(env: dict[str, str], timeout: float = 30, *, port: int | None = None) -> Iterator[str]:
    """Run `marid web` as a child process (on ``port``, or a free one); yields its base URL.

    MARID_BASE_URL is set to the server's own address, so links in mail point at this very server.
    """
    port = port or free_port()
    base = f"http://127.0.0.1:{port}"
    env = {**env, "MARID_BASE_URL": base}
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "web", "--port", str(port)], env=env)
    try:
        deadline = time.monotonic() + timeout
        while not _ready(base + "/readyz"):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"marid web did not start (exit code {process.poll()})")
            time.sleep(0.05)
        yield base
    finally:
        stop_process(process)


@contextmanager
def worker_process(env: dict[str, str], queue: str = "all") -> Iterator[subprocess.Popen[bytes]]:
    """Run `marid worker --queue QUEUE` (both queues by default) as a child process for the duration of the block."""
    process = subprocess.Popen([sys.executable, "-m", "app.cli", "worker", "--queue", queue], env=env)
    try:
        yield process
    finally:
        stop_process(process)
