"""Onboarding's last step over HTTP: it offers the engineering pipeline on a sample task, says what it will add
and on which model; starting adds the pipeline and the missing roster agents, starts the run (once, even when
sent twice) and opens its page; an empty task changes nothing; viewers cannot."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterator

import pytest
from sqlalchemy import select
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.main import create_app
from app.onboarding.first_run import SAMPLE_TASK, agents_needed
from app.onboarding.steps import STEPS, next_step
from app.pipelines.models import PipelineRecord
from app.runs.models import Run
from tests.agents.helpers import add_models, agents_in
from tests.helpers import csrf_of, http_client, log_in, workspace_with
from tests.runs.stack import quiet_settings


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The app with its engine jobs on a Redis database of their own (``quiet_settings``)."""
    with quiet_settings(settings) as quiet, http_client(create_app(quiet)) as test_client:
        yield test_client


def test_it_is_the_last_step_after_the_team() -> None:
    keys = [step.key for step in STEPS]
    assert keys[-2:] == ["agents", "first_run"]
    assert next_step("agents", "acme") == "/w/acme/onboarding/run" and next_step("first_run", "acme") == "/w/acme"


async def test_one_button_adds_the_pipeline_and_team_and_starts_the_run(
    client: TestClient, db: Database, settings: Settings
) -> None:
    workspace, (owner, viewer) = await workspace_with(db, f"firstrun-{secrets.token_hex(3)}", ["viewer"])
    url = f"/w/{workspace.slug}/onboarding/run"
    log_in(client, owner.email)
    page = client.get(url)
    assert page.status_code == 200 and "No model yet" in page.text and SAMPLE_TASK.replace('"', "&#34;") in page.text
    await add_models(db, workspace.id, "openai/gpt-4.1")
    page = client.get(url)
    assert "Runs on <code>openai/gpt-4.1</code>" in page.text
    assert all(f"<code>{agent}</code>" in page.text for agent in agents_needed("engineering"))
    token = csrf_of(page.text)
    form_id = re.search(r'name="form_id" value="([^"]+)"', page.text)
    assert form_id is not None
    refused = client.post(url, data={"csrf_token": token, "task": "  "})
    assert refused.status_code == 422 and "Say what the run should do." in refused.text
    async with db.tenant_session(workspace.id) as session:
        assert await session.get(PipelineRecord, "engineering") is None  # nothing half-added
    assert await agents_in(db, workspace.id) == {}

    form = {"csrf_token": token, "form_id": form_id.group(1), "task": SAMPLE_TASK}
    started = client.post(url, data=form)
    again = client.post(url, data=form)
    assert started.status_code == 303 and again.headers["location"] == started.headers["location"]
    async with db.tenant_session(workspace.id) as session:
        runs = list(await session.scalars(select(Run)))
        assert await session.get(PipelineRecord, "engineering") is not None
    assert len(runs) == 1 and runs[0].pipeline_id == "engineering" and runs[0].task == SAMPLE_TASK
    assert started.headers["location"] == f"/w/{workspace.slug}/runs/{runs[0].id}"
    assert set(agents_needed("engineering")) <= set(await agents_in(db, workspace.id))
    assert client.get(started.headers["location"]).status_code == 200

    client.cookies.clear()
    log_in(client, viewer.email)
    assert client.get(url).status_code == 403
    assert client.post(url, data={"csrf_token": csrf_of(client.get(f"/w/{workspace.slug}").text)}).status_code == 403
