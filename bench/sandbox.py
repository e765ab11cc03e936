"""Sandbox start-up: from "step scheduled" (``runner.start()`` called) to "agent process running", per runner.

    .venv/bin/python bench/sandbox.py [--runs 30] [--runners local,docker] [--docker-host unix:///path.sock]

"Running" is measured two ways, each next to a bare baseline measured in the same run:

- **marker**: the sandbox's command is ``sh -c 'echo up > /run/marid/ready'`` (a FIFO in the channel directory
  that the bench reads), i.e. the first instruction of the process inside. Baselines: ``bwrap … /bin/true`` and
  ``docker run --rm --network none <image> true``, spawn to exit (the issue's figures).
- **connect**: the command is Python connecting to the channel socket (what the agent runtime does first), timed
  to the supervisor's accept. Baselines: the same Python under a bare ``bwrap`` and under ``docker run``.

Goals (issue 12): the local runner adds <= 50 ms at p50 over its baseline; the Docker runner <= 1.5x its
baseline. Needs root for the full local runner (own uid, cgroups) and, for Docker, starts a private dockerd
(like the tests) unless ``--docker-host`` is given; images come from the same cache as the tests.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import docker
import docker.errors

from app.sandbox import stepdirs
from app.sandbox.images import ensure_runtime_image
from app.sandbox.runner import CHANNEL_SOCKET, Limits, Runner, SandboxSpec
from app.sandbox.runners.docker import DockerRunner
from app.sandbox.runners.local import LocalRunner
from app.sandbox.runtime_env import ensure_runtime_venv

CACHE = Path(os.environ.get("MARID_TEST_IMAGE_CACHE", "/var/tmp/marid-test-images"))
MARKER = ["sh", "-c", "echo up > /run/marid/ready"]
CONNECT = ["python3", "-c", "import socket; socket.socket(socket.AF_UNIX).connect('/run/marid/channel.sock')"]
BARE_BWRAP = [
    "bwrap", "--unshare-all", "--die-with-parent",
    "--ro-bind", "/usr", "/usr", "--symlink", "usr/bin", "/bin", "--symlink", "usr/lib", "/lib",
    "--symlink", "usr/lib64", "/lib64", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp",
]  # fmt: skip


def percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
    return statistics.median(ordered), p95


async def timed_exit(argv: list[str], env: dict[str, str] | None = None) -> float:
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(*argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    code = await process.wait()
    if code != 0:
        raise RuntimeError(f"{argv[0]} exited {code}")
    return time.perf_counter() - began


class Bench:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.count = 0

    def spec(self) -> SandboxSpec:
        self.count += 1
        sandbox_id = f"bench-{os.getpid()}-{self.count}"
        channel = self.root / "channels" / sandbox_id
        channel.mkdir(parents=True, mode=0o700)
        return SandboxSpec(
            workspace_id="bench",
            sandbox_id=sandbox_id,
            workdir=stepdirs.step_dir(self.root / "files", "bench", "run", sandbox_id),
            channel_dir=channel,
            limits=Limits(timeout_seconds=60),
        )

    async def marker(self, runner: Runner) -> float:
        spec = self.spec()
        fifo = spec.channel_dir / "ready"
        os.mkfifo(fifo, 0o600)
        fd = os.open(fifo, os.O_RDONLY | os.O_NONBLOCK)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[float] = loop.create_future()

        def readable() -> None:
            if os.read(fd, 16) and not ready.done():
                ready.set_result(time.perf_counter())

        loop.add_reader(fd, readable)
        try:
            began = time.perf_counter()
            sandbox = await runner.start(SandboxSpec(**{**spec.__dict__, "command": MARKER}))
            seen = await asyncio.wait_for(ready, 60)
        finally:
            loop.remove_reader(fd)
            os.close(fd)
        await sandbox.wait()
        await sandbox.remove()
        return seen - began

    async def connect(self, start: Callable[[SandboxSpec], Awaitable[Callable[[], Awaitable[None]]]]) -> float:
        spec = self.spec()
        loop = asyncio.get_running_loop()
        accepted: asyncio.Future[float] = loop.create_future()

        def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            if not accepted.done():
                accepted.set_result(time.perf_counter())
            writer.close()

        server = await asyncio.start_unix_server(on_connect, path=str(spec.channel_dir / CHANNEL_SOCKET))
        # For the bare baselines (the runners hand the directory to the sandbox's uid themselves).
        os.chmod(spec.channel_dir, 0o711)
        os.chmod(spec.channel_dir / CHANNEL_SOCKET, 0o666)
        try:
            began = time.perf_counter()
            finish = await start(spec)
            seen = await asyncio.wait_for(accepted, 60)
            await finish()
        finally:
            server.close()
            await server.wait_closed()
        return seen - began


def runner_start(runner: Runner) -> Callable[[SandboxSpec], Awaitable[Callable[[], Awaitable[None]]]]:
    async def start(spec: SandboxSpec) -> Callable[[], Awaitable[None]]:
        sandbox = await runner.start(SandboxSpec(**{**spec.__dict__, "command": CONNECT}))

        async def finish() -> None:
            await sandbox.wait()
            await sandbox.remove()

        return finish

    return start


def process_start(
    argv_for: Callable[[SandboxSpec], list[str]], env: dict[str, str] | None = None
) -> Callable[[SandboxSpec], Awaitable[Callable[[], Awaitable[None]]]]:
    async def start(spec: SandboxSpec) -> Callable[[], Awaitable[None]]:
        process = await asyncio.create_subprocess_exec(
            *argv_for(spec), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
        )

        async def finish() -> None:
            await process.wait()

        return finish

    return start


@contextmanager
def private_dockerd() -> Iterator[str]:
    root = Path(tempfile.mkdtemp(prefix="marid-bench-dockerd-"))
    host = f"unix://{root}/docker.sock"
    argv = ["dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"), "--pidfile",
            str(root / "pid"), "-H", host, "--iptables=false", "--ip-forward=false", "--bridge=none"]  # fmt: skip
    with open(root / "log", "wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=log, start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                docker.DockerClient(base_url=host).close()
                break
            except docker.errors.DockerException:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("dockerd did not start: " + (root / "log").read_text()[-2000:]) from None
                time.sleep(0.05)
        yield host
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        shutil.rmtree(root, ignore_errors=True)


async def measure(name: str, runs: int, sample: Callable[[], Awaitable[float]]) -> list[float]:
    await sample()  # warm-up: page cache, first-time setup
    results = [await sample() for _ in range(runs)]
    p50, p95 = percentiles(results)
    print(f"  {name:<52} p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms", flush=True)
    return results


async def bench_local(bench: Bench, runs: int) -> None:
    runtime = ensure_runtime_venv(CACHE / "runtime")
    runner = LocalRunner(state_dir=bench.root / "state", worker_id="bench", runtime=runtime)
    print("local (bubblewrap):")
    base = await measure(
        "bare bwrap ... /bin/true (spawn to exit)", runs, lambda: timed_exit([*BARE_BWRAP, "/bin/true"])
    )
    mark = await measure("LocalRunner.start() -> marker written", runs, lambda: bench.marker(runner))

    def bare_connect(spec: SandboxSpec) -> list[str]:
        return [*BARE_BWRAP, "--bind", str(spec.channel_dir), "/run/marid", *CONNECT]

    base_py = await measure(
        "bare bwrap + python3 connect -> accepted", runs, lambda: bench.connect(process_start(bare_connect))
    )
    conn = await measure(
        "LocalRunner.start() + python3 connect -> accepted", runs, lambda: bench.connect(runner_start(runner))
    )
    added = statistics.median(mark) - statistics.median(base)
    added_py = statistics.median(conn) - statistics.median(base_py)
    verdict = "ok" if added <= 0.050 else "OVER"
    print(
        f"  added at p50: marker {added * 1000:+.1f} ms (goal <= 50 ms: {verdict}); connect {added_py * 1000:+.1f} ms"
    )


async def bench_docker(bench: Bench, runs: int, host: str) -> None:
    client = docker.DockerClient(base_url=host)
    image = ensure_runtime_image(client, docker_host=host, cache=CACHE)
    client.close()
    runner = DockerRunner(image=image, state_dir=bench.root / "state", worker_id="bench", base_url=host)
    env = {**os.environ, "DOCKER_HOST": host}
    print(f"docker ({image}):")
    cli = ["docker", "run", "--rm", "--network", "none", image]
    base = await measure(
        "docker run --rm --network none IMAGE true (to exit)", runs, lambda: timed_exit([*cli, "true"], env)
    )
    mark = await measure("DockerRunner.start() -> marker written", runs, lambda: bench.marker(runner))

    def cli_connect(spec: SandboxSpec) -> list[str]:
        return [*cli[:-1], "-v", f"{spec.channel_dir}:/run/marid", image, *CONNECT]

    base_py = await measure(
        "docker run + python3 connect -> accepted", runs, lambda: bench.connect(process_start(cli_connect, env))
    )
    conn = await measure(
        "DockerRunner.start() + python3 connect -> accepted", runs, lambda: bench.connect(runner_start(runner))
    )
    runner.close()
    ratio = statistics.median(mark) / statistics.median(base)
    ratio_py = statistics.median(conn) / statistics.median(base_py)
    verdict = "ok" if ratio <= 1.5 else "OVER"
    print(f"  ratio at p50: marker {ratio:.2f}x (goal <= 1.5x: {verdict}); connect {ratio_py:.2f}x")


async def main_async(args: argparse.Namespace) -> None:
    root = Path(tempfile.mkdtemp(prefix="marid-bench-sandbox-"))
    os.chmod(root, 0o711)
    try:
        bench = Bench(root)
        kinds = args.runners.split(",")
        if "local" in kinds:
            await bench_local(bench, args.runs)
        if "docker" in kinds:
            if args.docker_host:
                await bench_docker(bench, args.runs, args.docker_host)
            else:
                with private_dockerd() as host:
                    await bench_docker(bench, args.runs, host)
    finally:
        shutil.rmtree(root, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--runners", default="local,docker")
    parser.add_argument("--docker-host", default="")
    asyncio.run(main_async(parser.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
