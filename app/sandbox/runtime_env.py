"""The agent runtime for the local runner: a venv of Debian's /usr/bin/python3, mounted read-only in sandboxes.

The sandbox sees the host's /usr read-only and nothing of /usr/local or the server's own venv, so the runtime
gets a venv of its own, made from the system Python (what /usr holds) with ``pip install agent-runtime/``. It is
cached under ``<cache>/runtime-<digest>``, the digest covering the runtime's sources and that interpreter, so a
change to agent-runtime/ builds a new one; builds are serialised by a lock file and published by a rename.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from app.sandbox.runner import SandboxError

SYSTEM_PYTHON = Path("/usr/bin/python3")
# Where the runtime appears inside a sandbox (the Docker image installs it at the same place).
RUNTIME_MOUNT = "/opt/marid-runtime"
RUNTIME_COMMAND = (f"{RUNTIME_MOUNT}/bin/python3", "-m", "agent_runtime")
SKIP = {"__pycache__", "build", "dist", ".wheelhouse"}
KEEP = 3


def agent_runtime_source() -> Path:
    """agent-runtime/ in this checkout (the server's own package sits beside it)."""
    source = Path(__file__).resolve().parents[2] / "agent-runtime"
    if not (source / "pyproject.toml").is_file():
        raise SandboxError(f"no agent-runtime sources at {source}; set MARID_SANDBOX_RUNTIME_DIR to a built runtime")
    return source


def source_files(source: Path) -> list[Path]:
    files = []
    for folder, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in SKIP and not d.endswith(".egg-info"))
        files += [Path(folder) / name for name in sorted(names) if not name.endswith((".pyc", ".pyo"))]
    return files


def copy_sources(source: Path, target: Path) -> Path:
    """A clean copy of the sources to build from: pip's in-tree build would leave build/ and *.egg-info behind."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*SKIP, "*.egg-info", "*.pyc"))
    return target


def source_digest(source: Path, python: Path = SYSTEM_PYTHON) -> str:
    digest = hashlib.sha256()
    interpreter = python.resolve()
    stat = interpreter.stat()
    digest.update(f"{interpreter}:{stat.st_size}:{stat.st_mtime_ns}\0".encode())
    for path in source_files(source):
        digest.update(str(path.relative_to(source)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_runtime_venv(cache: Path, source: Path | None = None, python: Path = SYSTEM_PYTHON) -> Path:
    """The runtime venv for the current sources, built on first use (a few seconds, with pip)."""
    source = source or agent_runtime_source()
    if not python.exists():
        raise SandboxError(f"{python} is missing: the local runner needs Debian's python3 (apt-get install python3)")
    target = cache / f"runtime-{source_digest(source, python)}"
    if (target / ".complete").exists():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    os.chmod(cache, 0o755)
    with open(cache / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another worker or test process may be building the same one
        if not (target / ".complete").exists():
            _build(target, source, python)
            _forget_old(cache, keep=target)
    return target


def _build(target: Path, source: Path, python: Path) -> None:
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".build-") as scratch:
        venv = Path(scratch) / "venv"
        copy = copy_sources(source, Path(scratch) / "src")
        steps = [
            [str(python), "-m", "venv", str(venv)],
            [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", str(copy)],
        ]
        for step in steps:
            result = subprocess.run(step, capture_output=True, text=True, check=False)
            if result.returncode != 0:
                raise SandboxError(
                    f"building the agent runtime failed ({' '.join(step[:3])}):\n{result.stderr[-2000:]}"
                )
        (venv / ".complete").write_text("")
        # Readable by every sandbox uid whatever the umask was.
        for folder, _, _ in os.walk(venv):
            os.chmod(folder, 0o755)
        if target.exists():
            shutil.rmtree(target)
        venv.rename(target)


def _forget_old(cache: Path, keep: Path) -> None:
    """Drop all but the newest few runtimes (older ones may still be mounted by a running step: keep some)."""
    others = sorted(
        (path for path in cache.glob("runtime-*") if path != keep), key=lambda p: p.stat().st_mtime, reverse=True
    )
    for old in others[KEEP - 1 :]:
        shutil.rmtree(old, ignore_errors=True)
