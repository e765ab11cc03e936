"""The test-only process runner: refused in production, a clean environment, kill reaches the whole group."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from app.sandbox.runner import SandboxSpec
from app.sandbox.runners.process import ProcessRunner, ProcessRunnerRefused
from tests.processes import alive, eventually, pid_in


def spec(workdir: Path, command: list[str], sandbox_id: str = "sb-1") -> SandboxSpec:
    return SandboxSpec(
        workspace_id="ws-1",
        sandbox_id=sandbox_id,
        workdir=workdir,
        channel_dir=workdir / "channel",
        command=command,
        env={"STEP_VALUE": "given"},
        labels={"marid.worker": "worker-1"},
    )


@pytest.mark.parametrize("environment", ["production", "", "prod"])
def test_it_is_refused_outside_dev_and_test(environment: str) -> None:
    with pytest.raises(ProcessRunnerRefused, match="no isolation"):
        ProcessRunner(environment=environment)


async def test_the_child_gets_a_clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MARID_SECRET_KEY", "worker-secret-that-must-not-leak")
    monkeypatch.setenv("MARID_DATABASE_URL", "postgresql://marid:pw@db/marid")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "nope")
    runner = ProcessRunner(environment="test")
    dump = "import json, os; json.dump(dict(os.environ), open('env.json', 'w'))"
    sandbox = await runner.start(spec(tmp_path, [sys.executable, "-c", dump]))
    assert await sandbox.wait() == 0
    await sandbox.remove()

    env = (tmp_path / "env.json").read_text()
    assert "worker-secret" not in env and "postgresql" not in env and "AWS_" not in env
    values = json.loads(env)
    assert values["MARID_CHANNEL"] == f"unix:{tmp_path / 'channel' / 'channel.sock'}"
    assert values["MARID_WORKSPACE"] == str(tmp_path)
    assert values["STEP_VALUE"] == "given"
    assert set(values) <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "TZ",
        "HOME",
        "PYTHONUNBUFFERED",
        "PYTHONDONTWRITEBYTECODE",
        "STEP_VALUE",
        "MARID_CHANNEL",
        "MARID_WORKSPACE",
        "LC_CTYPE",
    }


async def test_kill_stops_the_process_group_and_records_are_kept_until_removed(tmp_path: Path) -> None:
    runner = ProcessRunner(environment="test", worker_id="worker-1")
    script = "sleep 60 & echo $! > child.pid; sleep 60"
    sandbox = await runner.start(spec(tmp_path, ["/bin/sh", "-c", script]))
    await eventually(lambda: pid_in(tmp_path / "child.pid"))
    [record] = await runner.list_owned()
    assert (record.sandbox_id, record.workspace_id, record.worker_id, record.running) == (
        "sb-1",
        "ws-1",
        "worker-1",
        True,
    )

    await sandbox.kill()
    assert await asyncio.wait_for(sandbox.wait(), 5) == 128 + 9
    await eventually(lambda: not alive(pid_in(tmp_path / "child.pid") or 0))
    assert [r.running for r in await runner.list_owned()] == [False]
    await runner.destroy("sb-1")
    assert await runner.list_owned() == []
