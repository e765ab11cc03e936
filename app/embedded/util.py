"""Helpers shared by the embedded servers."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from pathlib import Path


class MissingDependency(RuntimeError):
    """A program Marid needs is not installed; the message says how to get it."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        # Like uvicorn, ignore connections lingering in TIME_WAIT from a previous run.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def unprivileged_user() -> str | None:
    """The account to run a server as when we are root; None when we are not root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            pwd.getpwnam(name)
            return name
        except KeyError:
            continue
    raise MissingDependency("Running as root, but there is no unprivileged 'postgres' or 'nobody' user.")


def child_command(argv: Sequence[str], *, user: str | None = None) -> list[str]:
    """Wrap ``argv`` so the child gets SIGINT when we die (and drops to ``user`` when given)."""
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        if user is not None:
            raise MissingDependency("setpriv (util-linux) is needed to run servers as an unprivileged user.")
        return list(argv)
    wrapper = [setpriv, "--pdeathsig", "INT"]
    if user is not None:
        entry = pwd.getpwnam(user)
        wrapper += [f"--reuid={entry.pw_uid}", f"--regid={entry.pw_gid}", "--clear-groups"]
    return wrapper + ["--", *argv]


def chown_tree(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, entry.pw_uid, entry.pw_gid)
        for name in dirs + files:
            os.lchown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def wait_until(check: Callable[[], bool], *, timeout: float, what: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        if check():
            return
        time.sleep(0.02)
    raise TimeoutError(f"{what} did not become ready in {timeout:.0f} s")


def stop_process(process: subprocess.Popen[bytes], sig: int = signal.SIGINT, timeout: float = 20) -> None:
    if process.poll() is not None:
        return
    process.send_signal(sig)
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def can_connect(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False
