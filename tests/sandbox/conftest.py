"""Real sandboxes for the sandbox tests: bubblewrap, cgroups, and a Docker engine this session starts itself.

The engine runs with private data and exec roots and its own socket, no bridge, no iptables and no IP
forwarding (it leaves no trace on the host), and stops by its PID at the end. Its images are built once per
machine and cached as tars in ``IMAGE_CACHE`` (keyed by a digest of their inputs, app/sandbox/images.py); the
agent runtime's venv for the local runner is cached there too.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import docker
import docker.errors
import pytest

from app.sandbox import stepdirs
from app.sandbox.images import ensure_runtime_image
from app.sandbox.runner import OUTPUT_LOG, Ending, Limits, Runner, Sandbox, SandboxSpec, ending_of
from app.sandbox.runners.docker import DockerRunner
from app.sandbox.runners.local import LocalRunner
from app.sandbox.runtime_env import ensure_runtime_venv

IMAGE_CACHE = Path(os.environ.get("MARID_TEST_IMAGE_CACHE", "/var/tmp/marid-test-images"))
RUNNERS = ["local", "docker"]


@dataclass
class Dockerd:
    host: str
    client: docker.DockerClient
    root: Path


@pytest.fixture(scope="session")
def dockerd() -> Iterator[Dockerd]:
    binary = shutil.which("dockerd")
    if binary is None:
        pytest.fail("dockerd is not installed: apt-get install docker.io (scripts/test does it as root)")
    root = Path(tempfile.mkdtemp(prefix="marid-dockerd-"))
    host = f"unix://{root}/docker.sock"
    with open(root / "dockerd.log", "wb") as log:
        process = subprocess.Popen(
            [
                binary,
                "--data-root", str(root / "data"),
                "--exec-root", str(root / "exec"),
                "--pidfile", str(root / "dockerd.pid"),
                "-H", host,
                # No bridge, no NAT rules, no forwarding: containers get network "none" anyway.
                "--iptables=false",
                "--ip-forward=false",
                "--bridge=none",
            ],
            stdout=log,
            stderr=log,
            start_new_session=True,
        )  # fmt: skip
    client: docker.DockerClient | None = None
    try:
        deadline = time.monotonic() + 30
        while client is None:
            try:
                # The client asks the engine for its API version as it is made: that is the readiness check.
                client = docker.DockerClient(base_url=host, timeout=300)
            except docker.errors.DockerException:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("dockerd did not start:\n" + (root / "dockerd.log").read_text()[-3000:])
                time.sleep(0.05)
        yield Dockerd(host, client, root)
    finally:
        if client is not None:
            client.close()
        process.send_signal(signal.SIGTERM)  # it stops its containerd too
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def runtime_image(dockerd: Dockerd) -> str:
    return ensure_runtime_image(dockerd.client, docker_host=dockerd.host, cache=IMAGE_CACHE)


@pytest.fixture(scope="session")
def runtime_venv() -> Path:
    return ensure_runtime_venv(IMAGE_CACHE / "runtime")


@pytest.fixture(scope="session")
def sandbox_root() -> Iterator[Path]:
    """Files, channels and runner state of the session; passable (o+x) for the sandboxes' uids."""
    root = Path(tempfile.mkdtemp(prefix="marid-sandbox-test-"))
    os.chmod(root, 0o711)
    yield root
    shutil.rmtree(root, ignore_errors=True)


async def make_runner(kind: str, request: pytest.FixtureRequest, state: Path) -> LocalRunner | DockerRunner:
    if kind == "local":
        return LocalRunner(
            state_dir=state,
            worker_id="test-worker",
            runtime=request.getfixturevalue("runtime_venv"),
            require_limits=True,
        )
    image = request.getfixturevalue("runtime_image")
    engine: Dockerd = request.getfixturevalue("dockerd")
    return DockerRunner(image=image, state_dir=state, worker_id="test-worker", base_url=engine.host)


@pytest.fixture(params=RUNNERS)
async def runner(request: pytest.FixtureRequest, sandbox_root: Path) -> AsyncIterator[Runner]:
    state = Path(tempfile.mkdtemp(prefix="state-", dir=sandbox_root))
    made = await make_runner(request.param, request, state)
    yield made
    for record in await made.list_owned():
        await made.destroy(record.sandbox_id)
    if isinstance(made, DockerRunner):
        made.close()


@dataclass
class Box:
    """Makes specs for one test: a step directory per workspace and a channel directory per sandbox."""

    root: Path
    made: list[str] = field(default_factory=list)

    @property
    def files(self) -> Path:
        return self.root / "files"

    def spec(
        self,
        command: Sequence[str] | None,
        *,
        workspace: str = "ws-a",
        step: str | None = None,
        limits: Limits | None = None,
        env: dict[str, str] | None = None,
    ) -> SandboxSpec:
        sandbox_id = f"sbx-{os.urandom(6).hex()}"
        self.made.append(sandbox_id)
        channel = self.root / "channels" / sandbox_id
        channel.mkdir(parents=True, mode=0o700)
        return SandboxSpec(
            workspace_id=workspace,
            sandbox_id=sandbox_id,
            workdir=stepdirs.step_dir(self.files, workspace, "run-1", step or sandbox_id),
            channel_dir=channel,
            command=command,
            env=env or {},
            limits=limits or Limits(memory_bytes=128 << 20, pids=64, timeout_seconds=30),
            labels={"test": "sandbox"},
        )


@pytest.fixture
def box(sandbox_root: Path) -> Box:
    root = Path(tempfile.mkdtemp(prefix="box-", dir=sandbox_root))
    os.chmod(root, 0o711)
    (root / "channels").mkdir(mode=0o711)
    return Box(root)


@dataclass
class Outcome:
    code: int
    ending: Ending | None
    output: str
    seconds: float


async def run_to_end(runner: Runner, spec: SandboxSpec, *, started: Sandbox | None = None) -> Outcome:
    """Start ``spec`` (unless given its sandbox), wait for it, remove it; what it said and how it ended."""
    began = time.monotonic()
    sandbox = started or await runner.start(spec)
    try:
        code = await asyncio.wait_for(sandbox.wait(), spec.limits.timeout_seconds + 60)
    finally:
        await sandbox.remove()
    output = (spec.channel_dir / OUTPUT_LOG).read_text(errors="replace")
    return Outcome(code, ending_of(sandbox), output, time.monotonic() - began)


# The supervisor's fixtures (a scripted LLM server, the process runner, a supervisor), for the channel tests.
from tests.sandbox.supervision import (  # noqa: E402
    channels_root,
    llm,
    make_supervisor,
    process_runner,
    supervisor,
    workdir,
)

__all__ = ["channels_root", "llm", "make_supervisor", "process_runner", "supervisor", "workdir"]
