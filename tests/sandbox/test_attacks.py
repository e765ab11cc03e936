"""Attacks from inside a sandbox, the same set against both runners (issue 12).

Each attack is code running in a sandbox that reports what it achieved (tests/sandbox/probe.py, or a bomb that
prints and exits); the test checks the report, the exit status and the runner's reason, and that the host and a
sandbox started alongside carried on.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
from pathlib import Path

import pytest

from app.sandbox import stepdirs
from app.sandbox.runner import Ending, Limits, Runner
from app.sandbox.runners.docker import DockerRunner
from tests.conftest import Services
from tests.sandbox.conftest import Box, run_to_end

ROOT = Path(__file__).resolve().parents[2]
PROBE = (Path(__file__).parent / "probe.py").read_text()
PLATFORM_SECRETS = {
    "MARID_SECRET_KEY": "platform-secret-key-" + secrets.token_hex(8),
    "MARID_ENCRYPTION_KEY": "platform-encryption-key-" + secrets.token_hex(8),
    "MARID_DATABASE_URL": "postgresql+asyncpg://marid:db-password-" + secrets.token_hex(8) + "@127.0.0.1/marid",
    "OPENAI_API_KEY": "sk-provider-key-" + secrets.token_hex(8),
}


@pytest.fixture
def platform(monkeypatch: pytest.MonkeyPatch, box: Box) -> dict[str, str]:
    """The worker's secrets, in its environment and in a file beside the sandboxes' files, as on a real host."""
    for name, value in PLATFORM_SECRETS.items():
        monkeypatch.setenv(name, value)
    (box.root / "dev-secrets.json").write_text(json.dumps(PLATFORM_SECRETS))
    other = stepdirs.step_dir(box.files, "ws-b", "run-9", "step-9")
    other_secret = "workspace-b-secret-" + secrets.token_hex(8)
    (other / "notes.txt").write_text(other_secret)
    return {**PLATFORM_SECRETS, "OTHER_WORKSPACE": other_secret, "OTHER_PATH": str(other)}


async def test_cannot_read_write_or_connect_out_and_finds_no_secret(
    runner: Runner, box: Box, platform: dict[str, str], services: Services, request: pytest.FixtureRequest
) -> None:
    other = platform.pop("OTHER_PATH")
    engine = request.getfixturevalue("dockerd").host if isinstance(runner, DockerRunner) else "unix:///run/docker.sock"
    targets = {
        "files": [
            "/etc/shadow",
            "/root/.bashrc",
            "/proc/1/root/etc/shadow",
            f"{other}/notes.txt",
            str(ROOT / "pyproject.toml"),
            str(box.root / "dev-secrets.json"),
            "/sys/kernel/notes",
            "/proc/kcore",
        ],
        "dirs": ["/root", "/home", str(ROOT), str(box.files), str(Path(other).parent), "/sys", "/run/postgresql"],
        "writes": ["/usr/x", "/etc/x", "/opt/x", "/run/marid/x", "/x", "/workspace/ok", "/tmp/ok"],
        "tcp": [["127.0.0.1", services.postgres.port], ["127.0.0.1", services.redis.port], ["127.0.0.1", 22]],
        "unix": ["/var/run/docker.sock", "/run/docker.sock", engine.removeprefix("unix://")],
        # TEST-NET-1 (RFC 5737) and a private address: only the route lookup, no packet (probe.route).
        "routes": ["192.0.2.1", "10.0.0.1"],
        # Reversed, so the probe's own command line does not hold them; it turns them round in memory.
        "secrets": [value[::-1] for value in platform.values()],
    }
    source = PROBE.replace("targets = json.loads(sys.argv[1])", "targets = json.loads(sys.argv[1])\n"
                           "targets['secrets'] = [s[::-1] for s in targets['secrets']]")  # fmt: skip
    spec = box.spec(["python3", "-c", source, json.dumps(targets)], env={"MARID_CHANNEL": "unix:/run/marid/x"})
    outcome = await run_to_end(runner, spec)
    assert outcome.code == 0, outcome.output
    report = json.loads(outcome.output.strip().splitlines()[-1])

    assert report["uid"] != 0
    assert not any(report["read"].values()), report["read"]
    # Refused, or the sandbox's own empty directory (a Docker image has an empty /home, /sys is an empty tmpfs).
    assert not any(report["list"].values()), report["list"]
    writable = {path for path, ok in report["write"].items() if ok}
    assert writable == {"/workspace/ok", "/tmp/ok"}
    assert all(result != "connected" for result in report["tcp"].values()), report["tcp"]
    assert all(result != "connected" for result in report["unix"].values()), report["unix"]
    assert set(report["route"].values()) == {"Network is unreachable"}, report["route"]
    assert report["interfaces"] == ["lo"]
    # No capabilities, and none to be had again.
    assert int(report["cap_eff"], 16) == 0
    assert report["no_new_privs"] == "1"
    # Only its own processes: besides itself, the sandbox's tiny init (bubblewrap's or Docker's) as pid 1.
    others = list(report["processes"].values())
    assert len(others) == 1 and os.path.basename(others[0].split()[0]) in ("bwrap", "docker-init"), others
    if not isinstance(runner, DockerRunner):  # an image has its own (empty) /home and /root
        assert {"home", "root", "sys", "srv", "mnt"}.isdisjoint(report["root"]), report["root"]
    assert report["secrets_found"] == [], report["secrets_found"]
    assert report["files_scanned"] > 10  # it really looked (/etc, /opt's runtime, /workspace)


async def test_a_fork_bomb_is_contained(runner: Runner, box: Box) -> None:
    bomb = """
import os, sys, time
children = 0
while True:
    try:
        pid = os.fork()
    except OSError as error:
        print("fork refused after", children, "children:", error.strerror, flush=True)
        sys.exit(0)
    if pid == 0:
        while True:  # every child forks too: a real bomb
            try:
                os.fork()
            except OSError:
                time.sleep(60)
    children += 1
"""
    limits = Limits(memory_bytes=256 << 20, pids=48, timeout_seconds=30)
    neighbour = box.spec(["python3", "-c", "import time; time.sleep(1.5); print(sum(range(10**6)))"])
    bomb_spec = box.spec(["python3", "-c", bomb], limits=limits)
    started = await runner.start(neighbour)
    outcome, beside = await asyncio.gather(
        run_to_end(runner, bomb_spec), run_to_end(runner, neighbour, started=started)
    )
    assert "fork refused after" in outcome.output, outcome.output
    assert outcome.code == 0
    # The host carries on (it can start processes), and so did the sandbox next to the bomb.
    host = await asyncio.create_subprocess_exec("true")
    assert await host.wait() == 0
    assert beside.code == 0 and "499999500000" in beside.output


async def test_a_memory_bomb_is_killed_and_reported(runner: Runner, box: Box) -> None:
    bomb = "chunks = []\nwhile True:\n    chunks.append(b'x' * (8 << 20))"
    spec = box.spec(["python3", "-c", bomb], limits=Limits(memory_bytes=96 << 20, pids=32, timeout_seconds=60))
    outcome = await run_to_end(runner, spec)
    assert outcome.code == 137
    assert outcome.ending is Ending.OUT_OF_MEMORY
    assert outcome.seconds < 30


async def test_a_runaway_is_stopped_at_its_timeout(runner: Runner, box: Box) -> None:
    spec = box.spec(["python3", "-c", "while True: pass"], limits=Limits(timeout_seconds=2, cpus=0.5))
    outcome = await run_to_end(runner, spec)
    assert outcome.code == 137
    assert outcome.ending is Ending.TIMEOUT
    assert 1.9 < outcome.seconds < 15


async def test_a_sandbox_cannot_fill_the_disk_or_open_unlimited_files(runner: Runner, box: Box) -> None:
    script = """
import os
try:
    with open('/workspace/big', 'wb') as f:
        f.write(b'x' * (8 << 20))
    print('wrote all')
except OSError as error:
    print('write stopped:', error.strerror)
files = []
try:
    while True:
        files.append(open('/dev/null'))
except OSError as error:
    print('open stopped at', len(files), error.strerror)
"""
    limits = Limits(file_size_bytes=1 << 20, open_files=64, memory_bytes=128 << 20)
    spec = box.spec(["python3", "-c", script], limits=limits)
    outcome = await run_to_end(runner, spec)
    # RLIMIT_FSIZE: the write is cut at 1 MiB (SIGXFSZ is ignored by Python: the write fails instead).
    assert (spec.workdir / "big").stat().st_size <= 1 << 20
    assert "write stopped: File too large" in outcome.output, outcome.output
    assert "Too many open files" in outcome.output
    opened = int(outcome.output.split("open stopped at ")[1].split()[0])
    assert opened <= 64


def test_the_probe_is_only_the_standard_library() -> None:
    imports = {line.split()[1] for line in PROBE.splitlines() if line.startswith("import ")}
    assert imports <= {"json", "os", "socket", "sys"}
    assert os.path.basename(__file__) == "test_attacks.py"
