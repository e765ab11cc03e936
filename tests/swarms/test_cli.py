"""``marid swarm start file.yaml --follow`` against a real server and real workers, with an API key."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from sqlalchemy import select

from app.apikeys.service import Actor, create_key
from app.db import Database
from app.execution import ExecutionDeps
from app.llm.scripted import ScriptedServer
from app.tenants.models import Membership
from app.tenants.permissions import Role
from tests.execution.scripts import StepScript
from tests.llm.gateway import GatewayServer, Tenant
from tests.swarms.conftest import Workers, add_agents

Start = Callable[..., Awaitable[Workers]]
YAML = """\
agent_id: yukihiro
title: Notes in a diamond
max_concurrent: 2
tasks:
  - {key: a, title: Start, execution_prompt: Write the first note.}
  - {key: b, title: Left, execution_prompt: Write the left note., dependencies: [a]}
  - {key: c, title: Right, execution_prompt: Write the right note., dependencies: [a], max_retries: 0}
  - {key: d, title: Join, execution_prompt: Write the last note., dependencies: [b, c]}
"""


async def api_key(db: Database, workspace_id: str) -> str:
    async with db.public_session() as session:
        owner = await session.scalar(
            select(Membership.user_id).where(Membership.workspace_id == workspace_id, Membership.role == "owner")
        )
        assert owner is not None
        _, key = await create_key(
            session, workspace_id=workspace_id, actor=Actor(user_id=owner, role=Role.OWNER), name="cli",
            kind="personal", scope="write", expires_at=None,
        )  # fmt: skip
    return key


async def marid(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "app.cli", *args, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_start_follow_and_a_bad_file(
    db: Database, deps: ExecutionDeps, llm: ScriptedServer, tenant: Tenant, gateway: GatewayServer,
    workers: Start, tmp_path: Path,
) -> None:  # fmt: skip
    await add_agents(db, tenant.id, "yukihiro")
    llm.register_key(tenant.key, StepScript(failures={"c": 1}))
    await workers()
    env = {**os.environ, "MARID_URL": gateway.url, "MARID_WORKSPACE": tenant.workspace.slug,
           "MARID_API_KEY": await api_key(db, tenant.id)}  # fmt: skip
    request = tmp_path / "swarm.yaml"
    request.write_text(YAML)

    code, out, err = await marid(env, "swarm", "start", str(request), "--dry-run")
    assert code == 0, err
    assert "4 tasks, depth 3, roots: a" in out

    code, out, err = await marid(env, "swarm", "start", str(request), "--follow")
    assert code == 1, (out, err)  # c fails (no retry allowed), so d is skipped and the swarm failed
    lines = out.splitlines()
    assert lines[0].startswith("started swarm_") and "Notes in a diamond (4 tasks)" in lines[0]
    assert "✔ a completed" in out and "✔ b completed" in out
    assert "✘ c failed: c broke on purpose" in out
    assert "⤼ d skipped: skipped: task 'c', which it depends on, failed" in out
    assert "■ swarm failed: 2 completed, 1 failed, 1 skipped, 0 cancelled" in out
    assert re.fullmatch(r"swarm swarm_\w+ failed: 2 completed, 1 failed, 1 skipped; cost \$0\.\d+", lines[-1])

    code, out, _ = await marid(env, "swarm", "list")
    assert code == 0 and "failed" in out and "Notes in a diamond" in out

    request.write_text(YAML.replace("dependencies: [a]}", "dependencies: [d]}", 1))
    code, out, err = await marid(env, "swarm", "start", str(request))
    assert code == 1 and "dependency cycle: b → d → b" in err

    code, _, err = await marid({**env, "MARID_API_KEY": ""}, "swarm", "list")
    assert code == 2 and "API key" in err
