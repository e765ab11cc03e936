"""A private Redis server run as a child process on a loopback port."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from app.embedded.util import (
    MissingDependency,
    can_connect,
    child_command,
    free_port,
    stop_process,
    wait_until,
)

INSTALL_HINT = "Redis is not installed: run `sudo apt-get install redis-server` (or `./marid dev` as root)."


class EmbeddedRedis:
    def __init__(self, data_dir: Path, *, port: int | None = None, durable: bool = True) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port or free_port()
        self.durable = durable
        binary = shutil.which("redis-server") or (
            "/usr/bin/redis-server" if Path("/usr/bin/redis-server").exists() else None
        )
        if binary is None:
            raise MissingDependency(INSTALL_HINT)
        self.binary = binary
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        argv = [
            self.binary,
            "--port", str(self.port),
            "--bind", "127.0.0.1",
            "--dir", str(self.data_dir),
            "--daemonize", "no",
            "--save", "",
            "--logfile", str(self.data_dir / "redis.log"),
        ]  # fmt: skip
        # In dev the event streams and queue survive a restart; tests do not need that.
        argv += ["--appendonly", "yes" if self.durable else "no"]
        self.process = subprocess.Popen(
            child_command(argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, process_group=0
        )
        wait_until(lambda: can_connect(self.port), timeout=timeout, what="Redis", process=self.process)

    def stop(self) -> None:
        if self.process is not None:
            # SIGTERM makes Redis flush its append-only file and exit.
            import signal

            stop_process(self.process, signal.SIGTERM)
            self.process = None
