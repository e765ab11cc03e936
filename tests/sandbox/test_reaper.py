"""The reaper, against real runners: a worker dies (SIGKILL), its sandboxes are found and destroyed."""

from __future__ import annotations

import asyncio
import json
import signal
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis

from app.config import Settings
from app.sandbox import workers
from app.sandbox.jobs import reap_sandboxes
from app.sandbox.reaper import reap
from app.sandbox.runner import Runner
from app.sandbox.runners.docker import DockerRunner
from app.sandbox.runners.local import LocalRunner
from tests.conftest import Services
from tests.sandbox.conftest import Box

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
async def redis(services: Services) -> AsyncIterator[Redis]:
    client = Redis.from_url(services.redis.url)
    yield client
    await client.aclose()


async def _orphan(runner: Runner, box: Box, request: pytest.FixtureRequest) -> tuple[str, str]:
    """A sandbox started by a worker process that is then SIGKILLed; its (sandbox id, worker id)."""
    spec = box.spec(["sleep", "300"])
    worker_id = workers.new_worker_id()
    if isinstance(runner, LocalRunner):
        assert runner.runtime is not None
        extra, host, state = str(runner.runtime), "", runner.state_dir
    else:
        assert isinstance(runner, DockerRunner)
        extra, host, state = runner.image, request.getfixturevalue("dockerd").host, runner.uids.directory.parent
    data = {
        "workspace_id": spec.workspace_id,
        "sandbox_id": spec.sandbox_id,
        "workdir": str(spec.workdir),
        "channel_dir": str(spec.channel_dir),
        "command": list(spec.command or []),
    }
    argv = [sys.executable, "-m", "tests.sandbox.orphan", runner.name, str(state), worker_id, json.dumps(data)]
    worker = await asyncio.create_subprocess_exec(*argv, extra, host, cwd=ROOT, stdout=asyncio.subprocess.PIPE)
    assert worker.stdout is not None
    assert await asyncio.wait_for(worker.stdout.readline(), 60) == b"started\n"
    worker.send_signal(signal.SIGKILL)
    await worker.wait()
    return spec.sandbox_id, worker_id


async def test_a_dead_workers_sandbox_is_reaped(
    runner: Runner, box: Box, redis: Redis, request: pytest.FixtureRequest
) -> None:
    sandbox_id, worker_id = await _orphan(runner, box, request)
    owned = {record.sandbox_id: record for record in await runner.list_owned()}
    assert owned[sandbox_id].worker_id == worker_id
    if isinstance(runner, DockerRunner):
        assert owned[sandbox_id].running  # a container outlives its worker: this is what the reaper is for
    # A live worker's sandbox, started alongside, is left alone.
    async with workers.heartbeat(redis, "test-worker"):
        keep = box.spec(["sleep", "30"])
        kept = await runner.start(keep)
        reaped = await reap(runner, redis)
        assert [item.sandbox_id for item in reaped] == [sandbox_id]
        assert "is gone" in reaped[0].reason
        remaining = {record.sandbox_id for record in await runner.list_owned()}
        assert sandbox_id not in remaining and keep.sandbox_id in remaining
        await kept.remove()
    if isinstance(runner, LocalRunner):
        assert not list((runner.state_dir / "uids").iterdir())
    assert await reap(runner, redis) == []


async def test_a_sandbox_past_its_deadline_is_reaped_even_with_a_live_worker(
    runner: Runner, box: Box, redis: Redis
) -> None:
    async with workers.heartbeat(redis, "test-worker"):
        spec = box.spec(["sleep", "60"])
        sandbox = await runner.start(spec)
        assert await reap(runner, redis) == []
        (record,) = [record for record in await runner.list_owned() if record.sandbox_id == spec.sandbox_id]
        assert record.deadline is not None
        reaped = await reap(runner, redis, now=record.deadline + 1)
        assert [item.reason for item in reaped] == ["it outlived its deadline"]
        assert await sandbox.wait() == 137


async def test_heartbeat_keeps_a_worker_alive_until_it_stops(redis: Redis) -> None:
    worker_id = workers.new_worker_id()
    assert await workers.alive(redis, [worker_id]) == set()
    async with workers.heartbeat(redis, worker_id, every=0.05):
        await asyncio.sleep(0.2)
        assert await workers.alive(redis, [worker_id, "someone-else"]) == {worker_id}
        assert 0 < await redis.ttl(f"marid:sandbox:worker:{worker_id}") <= workers.TTL
    assert await workers.alive(redis, [worker_id]) == set()


async def test_the_reaper_job_cleans_up_local_sandboxes(
    box: Box, redis: Redis, runtime_venv: Path, settings: Settings, request: pytest.FixtureRequest
) -> None:
    state = box.root / "state"
    local = LocalRunner(state_dir=state, worker_id="test-worker", runtime=runtime_venv)
    sandbox_id, _ = await _orphan(local, box, request)
    assert [record.sandbox_id for record in await local.list_owned()] == [sandbox_id]
    job_settings = settings.model_copy(update={"sandbox_state_dir": str(state), "sandbox_files_dir": str(box.files)})
    ctx: Any = {"settings": job_settings, "redis": redis, "worker_id": "reaper"}
    assert await reap_sandboxes(ctx) == 1
    assert await local.list_owned() == []
    assert box.files.is_dir()  # the files stay
