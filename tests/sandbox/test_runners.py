"""Both runners, the same behaviour: what runs inside, what it sees, its files, its channel, its end."""

from __future__ import annotations

import asyncio
import json
import os

from app.sandbox.runner import CHANNEL_SOCKET, Ending, Runner
from app.sandbox.runtime_env import RUNTIME_COMMAND
from tests.sandbox.conftest import Box, run_to_end


async def test_runs_the_agent_runtimes_python_with_its_packages(runner: Runner, box: Box) -> None:
    code = "import agent_runtime, openai, sys; print('runtime ok', sys.version_info[:2])"
    outcome = await run_to_end(runner, box.spec([RUNTIME_COMMAND[0], "-c", code]))
    assert outcome.code == 0, outcome.output
    assert outcome.ending is Ending.EXITED
    assert "runtime ok (3, 11)" in outcome.output


async def test_environment_is_only_what_the_spec_gives(runner: Runner, box: Box) -> None:
    spec = box.spec(["python3", "-c", "import json, os; print(json.dumps(dict(os.environ)))"], env={"STEP": "1"})
    outcome = await run_to_end(runner, spec)
    env = json.loads(outcome.output.strip().splitlines()[-1])
    assert env["STEP"] == "1"
    # The runner says where it mounted the channel and the files (the runtime reads both).
    assert env["MARID_CHANNEL"] == "unix:/run/marid/channel.sock" and env["MARID_WORKSPACE"] == "/workspace"
    allowed = {"MARID_CHANNEL", "MARID_WORKSPACE", "STEP", "PATH", "HOME", "LANG", "TMPDIR", "PWD", "HOSTNAME"}
    assert set(env) <= allowed


async def test_files_written_in_the_workspace_stay_and_come_back_to_the_platform(runner: Runner, box: Box) -> None:
    script = (
        "import os; open('/workspace/out.txt', 'w').write('hello'); os.makedirs('/workspace/sub');"
        "open('/workspace/sub/deep.txt', 'w').write('x'); os.chmod('/workspace/sub', 0o700);"
        "print(os.getuid(), os.stat('/workspace').st_uid)"
    )
    spec = box.spec(["python3", "-c", script])
    outcome = await run_to_end(runner, spec)
    assert outcome.code == 0, outcome.output
    assert (spec.workdir / "out.txt").read_text() == "hello"
    # After remove(), everything the sandbox left belongs to the platform (the owner of the run directory).
    owner = spec.workdir.parent.stat().st_uid
    for path in [spec.workdir, spec.workdir / "out.txt", spec.workdir / "sub", spec.workdir / "sub" / "deep.txt"]:
        assert path.lstat().st_uid == owner, path
    assert (spec.workdir.stat().st_mode & 0o777) == 0o700


async def test_each_sandbox_runs_as_a_uid_of_its_own(runner: Runner, box: Box) -> None:
    if os.geteuid() != 0:
        return  # without root every sandbox is the developer's own uid (docs/sandboxing.md)
    specs = [box.spec(["sh", "-c", "sleep 0.5; touch /workspace/mine"]) for _ in range(2)]
    started = [await runner.start(spec) for spec in specs]
    uids = {(spec.workdir / ".").stat().st_uid for spec in specs}
    assert len(uids) == 2 and 0 not in uids
    for sandbox, spec in zip(started, specs, strict=True):
        outcome = await run_to_end(runner, spec, started=sandbox)
        assert outcome.code == 0, outcome.output


async def test_talks_to_its_supervisor_over_the_channel_socket(runner: Runner, box: Box) -> None:
    spec = box.spec(
        [
            "python3",
            "-c",
            "import socket; s = socket.socket(socket.AF_UNIX); s.connect('/run/marid/channel.sock');"
            's.sendall(b\'{"v": 1, "type": "hello"}\\n\'); print(s.recv(100).decode())',
        ]
    )
    # The supervisor listens before start() (runner.py): the runner hands the socket to the sandbox's uid.
    server = await asyncio.start_unix_server(_answer, path=str(spec.channel_dir / CHANNEL_SOCKET))
    try:
        outcome = await run_to_end(runner, spec)
    finally:
        server.close()
        await server.wait_closed()
    assert outcome.code == 0, outcome.output
    assert '"type": "start"' in outcome.output


async def _answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    line = await reader.readline()
    assert json.loads(line)["type"] == "hello"
    writer.write(b'{"v": 1, "type": "start"}\n')
    await writer.drain()
    writer.close()


async def test_kill_ends_it_and_says_so(runner: Runner, box: Box) -> None:
    spec = box.spec(["sleep", "60"])
    sandbox = await runner.start(spec)
    await asyncio.sleep(0.3)
    await sandbox.kill()
    outcome = await run_to_end(runner, spec, started=sandbox)
    assert outcome.code == 137
    assert outcome.ending is Ending.KILLED
    assert outcome.seconds < 10


async def test_list_owned_and_destroy(runner: Runner, box: Box) -> None:
    spec = box.spec(["sleep", "60"])
    await runner.start(spec)
    records = {record.sandbox_id: record for record in await runner.list_owned()}
    record = records[spec.sandbox_id]
    assert record.running and record.workspace_id == "ws-a" and record.worker_id == "test-worker"
    assert record.created is not None and record.deadline is not None and record.deadline > record.created
    await runner.destroy(spec.sandbox_id)
    assert spec.sandbox_id not in {record.sandbox_id for record in await runner.list_owned()}
    await runner.destroy(spec.sandbox_id)  # a second time: nothing left, no error
