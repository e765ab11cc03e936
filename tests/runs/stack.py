"""A whole Marid for the run tests that need one: the demo model (the scripted LLM server), ``marid web`` and a
worker (``tests.runs.launch_engine``: the production worker with the process sandbox runner), all on a Redis
database of their own, sharing one files directory; and a workspace ready to run the starter pipelines on the
demo model."""

from __future__ import annotations

import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import redis

from app.agents.service import list_agents
from app.audit.actor import Actor
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.embedded.util import stop_process
from app.llm.scripted import ScriptedServer
from app.llm.service import add_demo_provider
from app.onboarding.first_run import ensure_starter
from app.pipelines.service import save_pipeline
from app.tenants.models import Workspace
from tests.agents.helpers import workspace_changes
from tests.helpers import make_user, make_workspace, person
from tests.servers import web_server

STACK_REDIS_DB = 9
# Three steps on roster agents, with a review that routes (the demo model takes the first value: APPROVED): done in
# seconds on the demo model. (The starters' loops and JSON-array outputs are beyond what the demo model answers.)
QUICK = """
id: quick
name: Quick
version: '1'
agents:
  - {id: product-owner, name: Product owner}
  - {id: software-engineer, name: Software engineer}
  - {id: test-engineer, name: Test engineer}
steps:
  - id: SPEC
    agent: product-owner
    input: "Write a short specification for: {{task_description}}"
    outputs: [spec]
    onComplete: BUILD
  - id: BUILD
    agent: software-engineer
    input: "Build this: {{spec}}"
    outputs: [build_summary]
    onComplete: CHECK
  - id: CHECK
    agent: test-engineer
    input: "Check the build: {{build_summary}}"
    outputs: [check_verdict]
    onResult:
      APPROVED: {notify: {agent: product-owner, message: The build is checked.}}
      REJECTED: {goto: BUILD}
"""


@dataclass(frozen=True)
class Stack:
    base_url: str
    env: dict[str, str]
    # The settings of the processes (their Redis database, the demo model).
    settings: Settings


@contextmanager
def run_stack(server_env: dict[str, str], settings: Settings) -> Iterator[Stack]:
    key = secrets.token_urlsafe(16)
    files = tempfile.mkdtemp(prefix="marid-stack-files-")
    redis_url = settings.redis_url.rsplit("/", 1)[0] + f"/{STACK_REDIS_DB}"
    flush = redis.Redis.from_url(redis_url)
    flush.flushdb()  # no job or event left by an earlier session
    with ScriptedServer(api_key=key) as demo:
        env = {
            **server_env,
            "MARID_REDIS_URL": redis_url,
            "MARID_DEMO_LLM_URL": demo.openai_base_url,
            "MARID_DEMO_LLM_KEY": key,
            "MARID_SANDBOX_FILES_DIR": files,
        }
        try:
            with web_server(env) as base:
                env = {**env, "MARID_BASE_URL": base}
                worker = subprocess.Popen([sys.executable, "-m", "tests.runs.launch_engine"], env=env)
                try:
                    stack_settings = settings.model_copy(
                        update={"redis_url": redis_url, "demo_llm_url": demo.openai_base_url}
                    )
                    yield Stack(base, env, stack_settings)
                finally:
                    stop_process(worker)
        finally:
            shutil.rmtree(files, ignore_errors=True)
            flush.flushdb()
            flush.close()


async def demo_workspace(
    db: Database, stack: Stack, label: str, *, starter: str | None = "engineering", quick: bool = True
) -> tuple[User, Workspace]:
    """An owner and their workspace with the demo model (its only model: every agent's default), a starter
    pipeline with its agents, and the QUICK pipeline."""
    owner = await make_user(db, label)
    workspace = await make_workspace(db, owner, label)
    async with workspace_changes(db, stack.settings, workspace.id) as session:
        await add_demo_provider(session, stack.settings, actor=Actor.system("Test"))
        if starter is not None:
            await ensure_starter(session, starter, person(owner))
        if quick:
            known = {agent.id for agent in await list_agents(session)}
            await save_pipeline(session, yaml=QUICK, actor=person(owner), known_agents=known)
    return owner, workspace


# The run pages' HTTP tests start runs with no worker: their engine jobs go to a Redis database of their own,
# flushed afterwards, so no worker of another test (the live tests run `marid worker` on database 0) picks them up.
QUIET_REDIS_DB = 10


@contextmanager
def quiet_settings(settings: Settings) -> Iterator[Settings]:
    url = settings.redis_url.rsplit("/", 1)[0] + f"/{QUIET_REDIS_DB}"
    client = redis.Redis.from_url(url)
    client.flushdb()
    try:
        yield settings.model_copy(update={"redis_url": url})
    finally:
        client.flushdb()
        client.close()
