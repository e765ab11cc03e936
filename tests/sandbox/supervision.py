"""A real scripted LLM server, a supervisor with the process runner (test-only: no isolation), a workdir.

Every step here starts a real process (the agent runtime, or a misbehaving fake from fake_runtime.py) that
connects to a real unix socket; LLM calls go through the supervisor to the scripted server over HTTP.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from app.llm.scripted import ScriptedServer
from app.sandbox.llm_proxy import LlmEndpoint
from app.sandbox.rpc import RpcRegistry
from app.sandbox.runners.process import ProcessRunner
from app.sandbox.session import Deadlines
from app.sandbox.step import StepEvent
from app.sandbox.supervisor import Supervisor

TOKEN = "step-token-for-tests"
FAKE_RUNTIME = Path(__file__).with_name("fake_runtime.py")


def fake(behaviour: str) -> list[str]:
    """The command of a misbehaving runtime."""
    return [sys.executable, str(FAKE_RUNTIME), behaviour]


@dataclass
class Recorder:
    events: list[StepEvent] = field(default_factory=list)

    async def __call__(self, event: StepEvent) -> None:
        self.events.append(event)

    @property
    def types(self) -> list[str]:
        return [e.type for e in self.events]

    def of(self, type_: str) -> list[dict[str, Any]]:
        return [dict(e.data) for e in self.events if e.type == type_]


@pytest.fixture
def llm() -> Iterator[ScriptedServer]:
    # The server takes only the step's token: a request that reached it with anything else would fail.
    with ScriptedServer(api_key=TOKEN) as server:
        yield server


@pytest.fixture
def channels_root() -> Iterator[Path]:
    # Short: a unix socket path has at most 107 bytes, and pytest's tmp_path is long.
    root = Path(tempfile.mkdtemp(prefix="mc-"))
    yield root
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "workspace"
    path.mkdir()
    return path


@pytest.fixture
def process_runner() -> ProcessRunner:
    return ProcessRunner(environment="test")


MakeSupervisor = Callable[..., Supervisor]


@pytest.fixture
async def make_supervisor(
    process_runner: ProcessRunner, llm: ScriptedServer, channels_root: Path
) -> AsyncIterator[MakeSupervisor]:
    made: list[Supervisor] = []

    def make(*, deadlines: Deadlines | None = None, rpc: RpcRegistry | None = None, **kw: Any) -> Supervisor:
        supervisor = Supervisor(
            process_runner,
            LlmEndpoint(llm.openai_base_url),
            channels_root=channels_root,
            rpc=rpc,
            deadlines=deadlines or Deadlines(hello_seconds=20, idle_seconds=20, grace_seconds=3, exit_seconds=3),
            **kw,
        )
        made.append(supervisor)
        return supervisor

    yield make
    for supervisor in made:
        await supervisor.aclose()


@pytest.fixture
def supervisor(make_supervisor: MakeSupervisor) -> Supervisor:
    return make_supervisor()
