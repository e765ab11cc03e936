"""The LLM providers pages: add a provider (the key sealed, shown only as a preview), refuse bad input without
changing anything, test the connection against a scripted provider, edit the catalogue's prices; who may do what;
base URLs that point inside the network are refused in production, at save time and at connection time."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.errors import Invalid
from app.llm import service
from app.llm.connection import check_connection
from app.llm.directory import Directory, provider_of
from app.llm.models import LlmModel, LlmProvider
from app.llm.scripted import Reply, Script, ScriptedServer
from app.llm.service import ProviderInput
from app.main import create_app
from app.security.secrets import SecretsService
from app.tenants.models import Workspace
from tests.dns_server import TestDns
from tests.helpers import http_client, log_in, post_form, workspace_with
from tests.llm.gateway import SETUP


async def _state(db: Database, workspace_id: str) -> tuple[int, int, int]:
    async with db.tenant_session(workspace_id) as session:
        providers = await session.scalar(select(func.count()).select_from(LlmProvider))
        models = await session.scalar(select(func.count()).select_from(LlmModel))
        audit = await session.scalar(select(func.count()).select_from(AuditEvent))
    return int(providers or 0), int(models or 0), int(audit or 0)


async def _providers(db: Database, workspace_id: str) -> list[LlmProvider]:
    async with db.tenant_session(workspace_id) as session:
        return list(await session.scalars(select(LlmProvider).order_by(LlmProvider.created_at)))


@pytest.fixture
async def team(db: Database) -> tuple[Workspace, list[Any]]:
    return await workspace_with(db, f"prov-{secrets.token_hex(3)}", ["admin", "member", "viewer"])


async def test_add_a_provider_test_it_and_edit_its_prices(
    db: Database,
    settings: Settings,
    secrets_service: SecretsService,
    llm: ScriptedServer,
    team: tuple[Workspace, list[Any]],
) -> None:
    workspace, (owner, *_) = team
    key = f"sk-pages-{secrets.token_hex(16)}"
    llm.register_key(key, Script.always(Reply(text="ok")))
    base = f"/w/{workspace.slug}/llm"
    with http_client(create_app(settings)) as client:
        log_in(client, owner.email)
        assert "No providers yet" in client.get(base).text
        added = post_form(
            client, base, f"{base}/providers",
            {"preset": "custom", "slug": "scripted", "label": "Scripted", "base_url": llm.openai_base_url,
             "api_key": key},
        )  # fmt: skip
        assert added.status_code == 303, added.text
        page = client.get(added.headers["location"])
        assert page.status_code == 200 and "Scripted" in page.text
        assert key not in page.text and f"{key[:3]}…{key[-4:]}" in page.text
        (provider,) = await _providers(db, workspace.id)
        assert provider.api_key_sealed and key not in provider.api_key_sealed
        async with db.tenant_session(workspace.id) as session:
            assert await service.open_key(session, secrets_service, workspace.id, provider) == key

        # Test connection: the provider lists its models (the demo model among them).
        tested = post_form(client, added.headers["location"], f"{base}/providers/{provider.id}/test")
        assert tested.status_code == 200 and "Connected:" in tested.text and "<code>demo</code>" in tested.text
        # A wrong key: the provider's own message, and the test is recorded.
        replaced = post_form(
            client, added.headers["location"], f"{base}/providers/{provider.id}/key", {"api_key": "sk-wrong-key-000000"}
        )
        assert replaced.status_code == 303
        failed = post_form(client, added.headers["location"], f"{base}/providers/{provider.id}/test")
        assert failed.status_code == 422
        assert "Test failed:" in failed.text and "Incorrect API key provided." in failed.text
        assert "sk-wrong-key-000000" not in failed.text
        (provider,) = await _providers(db, workspace.id)
        assert provider.last_test_ok is False and "Incorrect API key" in provider.last_test_message

        # The catalogue: add a model, edit its prices, refuse a bad price, remove it.
        url = f"{base}/providers/{provider.id}"
        model_form = {
            "name": "llama3.1:8b",
            "input_price": "0.10",
            "output_price": "$0.20",
            "context_window": "131,072",
        }
        assert post_form(client, url, f"{url}/models", model_form).status_code == 303
        duplicate = post_form(client, url, f"{url}/models", model_form)
        assert duplicate.status_code == 422 and "is in the catalogue already" in duplicate.text
        async with db.tenant_session(workspace.id) as session:
            model = await session.scalar(select(LlmModel).where(LlmModel.name == "llama3.1:8b"))
            assert model is not None
            assert (model.input_price, model.output_price, model.context_window) == (
                Decimal("0.10"), Decimal("0.20"), 131072,
            )  # fmt: skip
            assert await service.known_model(session, "scripted/llama3.1:8b")
            assert not await service.known_model(session, "scripted/gpt-9")
        before = await _state(db, workspace.id)
        bad = post_form(client, url, f"{base}/models/{model.id}", {"input_price": "cheap", "output_price": "-1"})
        assert bad.status_code == 422 and "Enter a price in dollars per million tokens" in bad.text
        assert await _state(db, workspace.id) == before
        saved = post_form(client, url, f"{base}/models/{model.id}", {"input_price": "0.15", "output_price": "0.6"})
        assert saved.status_code == 303
        assert post_form(client, url, f"{base}/models/{model.id}/delete").status_code == 303
        assert post_form(client, url, f"{base}/models/{uuid.uuid4()}/delete").status_code == 404
        removed = post_form(client, url, f"{url}/delete")
        assert removed.status_code == 303
    assert await _providers(db, workspace.id) == []
    async with db.tenant_session(workspace.id) as session:
        actions = list(await session.scalars(select(AuditEvent.action).order_by(AuditEvent.id)))
    assert actions == [
        "llm.provider_added", "llm.provider_tested", "llm.provider_key_replaced", "llm.provider_tested",
        "llm.model_added", "llm.model_changed", "llm.model_removed", "llm.provider_removed",
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("form", "field", "message"),
    [
        ({"preset": "openai", "api_key": ""}, "api_key", "Paste the provider's API key."),
        ({"preset": "custom", "base_url": "ftp://example.com"}, "base_url", "A base URL starts with https://"),
        ({"preset": "custom", "base_url": "https://user:pw@example.com/v1"}, "base_url", "not in the URL"),
        ({"preset": "custom", "base_url": ""}, "base_url", "Enter the endpoint's base URL"),
        ({"preset": "openai", "api_key": "sk-x", "slug": "Not A Slug"}, "slug", "A name is 1-40 lowercase"),
        ({"preset": "openai", "api_key": "sk x y"}, "api_key", "no spaces or control characters"),
        ({"preset": "quantum"}, "preset", "Choose a kind of provider."),
        ({"preset": "demo"}, "preset", "only available under `marid dev`"),
    ],
)
async def test_bad_provider_input_is_a_form_error_that_changes_nothing(
    db: Database, settings: Settings, team: tuple[Workspace, list[Any]], form: dict[str, str], field: str, message: str
) -> None:
    workspace, (owner, *_) = team
    before = await _state(db, workspace.id)
    base = f"/w/{workspace.slug}/llm"
    with http_client(create_app(settings)) as client:
        log_in(client, owner.email)
        response = post_form(client, base, f"{base}/providers", form)
    assert response.status_code == 422
    assert message.replace("'", "&#39;") in response.text
    assert await _state(db, workspace.id) == before


async def test_a_name_clash_is_a_form_error_that_changes_nothing(
    db: Database, settings: Settings, secrets_service: SecretsService, team: tuple[Workspace, list[Any]]
) -> None:
    workspace, (owner, *_) = team
    async with db.tenant_session(workspace.id) as session:
        await service.create_provider(
            session, secrets_service, settings, workspace_id=workspace.id, actor=SETUP,
            values=ProviderInput(preset="openai", api_key="sk-first-key-123456"),
        )  # fmt: skip
    before = await _state(db, workspace.id)
    base = f"/w/{workspace.slug}/llm"
    with http_client(create_app(settings)) as client:
        log_in(client, owner.email)
        response = post_form(client, base, f"{base}/providers", {"preset": "openai", "api_key": "sk-second-key-12345"})
    assert response.status_code == 422 and "A provider named “openai” exists already" in response.text
    assert "sk-second-key-12345" not in response.text
    assert await _state(db, workspace.id) == before


async def test_who_may_see_and_manage_providers(
    db: Database, settings: Settings, team: tuple[Workspace, list[Any]]
) -> None:
    workspace, (_, admin, member, viewer) = team
    base = f"/w/{workspace.slug}/llm"
    for user, manages in ((admin, True), (member, False), (viewer, False)):
        with http_client(create_app(settings)) as client:
            log_in(client, user.email)
            page = client.get(base)
            assert page.status_code == 200
            assert ("Add a provider" in page.text) is manages
            response = post_form(client, base, f"{base}/providers", {"preset": "ollama"})
            assert response.status_code == (303 if manages else 403)
            usage = client.get(f"/w/{workspace.slug}/usage")
            assert usage.status_code == (403 if user is viewer else 200)


async def test_production_refuses_internal_and_plain_http_endpoints(
    db: Database,
    settings: Settings,
    secrets_service: SecretsService,
    dns: TestDns,
    llm: ScriptedServer,
    team: tuple[Workspace, list[Any]],
) -> None:
    workspace, _ = team
    production = settings.model_copy(update={"env": "production"})
    dns.zone.set_addresses("llm.inside.example", ["10.1.2.3"])
    dns.zone.set_addresses("llm.outside.example", ["93.184.216.34"])

    async def add(url: str, config: Settings = production, slug: str = "edge") -> LlmProvider:
        async with db.tenant_session(workspace.id) as session:
            return await service.create_provider(
                session, secrets_service, config, workspace_id=workspace.id, actor=SETUP,
                values=ProviderInput(preset="custom", slug=slug, base_url=url, api_key="sk-edge-123456789"),
            )  # fmt: skip

    for url, problem in (
        ("http://llm.outside.example/v1", "https only"),
        ("https://127.0.0.1:11434/v1", "internal"),
        ("https://localhost/v1", "internal"),
        ("https://[::1]/v1", "internal"),
        ("https://llm.inside.example/v1", "resolves to an internal address"),
    ):
        with pytest.raises(Invalid, match=problem):
            await add(url)
    assert await _providers(db, workspace.id) == []
    await add("https://llm.outside.example/v1")
    # Allowed by the operator: a self-hosted endpoint next to Marid.
    await add(
        "http://127.0.0.1:11434/v1", production.model_copy(update={"llm_allow_private_endpoints": True}), "ollama"
    )

    # DNS rebinding: checked when saved, the name now points inside; the connection is refused all the same.
    dns.zone.set_addresses("llm.rebound.example", ["127.0.0.1"])
    row = LlmProvider(
        id=uuid.uuid4(), slug="rebound", label="Rebound", kind="openai", preset="custom",
        base_url=f"http://llm.rebound.example:{llm.port}/v1", key_preview="", last_test_message="",
        updated_at=datetime.now(UTC),
    )  # fmt: skip
    directory = Directory(db, secrets_service, production.model_copy(update={"dns_nameservers": dns.address}))
    try:
        result = await check_connection(directory, provider_of(production, row, "sk-edge-123456789"), [])
    finally:
        await directory.aclose()
    assert not result.ok and "internal address" in result.message, result.message


async def test_the_list_shows_keys_only_as_previews(
    db: Database, settings: Settings, secrets_service: SecretsService, team: tuple[Workspace, list[Any]]
) -> None:
    workspace, (_, _, member, _) = team
    key = "sk-proj-" + secrets.token_hex(20)
    async with db.tenant_session(workspace.id) as session:
        await service.create_provider(
            session, secrets_service, settings, workspace_id=workspace.id, actor=SETUP,
            values=ProviderInput(preset="openai", api_key=key),
        )  # fmt: skip
    (provider,) = await _providers(db, workspace.id)
    with http_client(create_app(settings)) as client:
        log_in(client, member.email)
        page = client.get(f"/w/{workspace.slug}/llm")
        detail = client.get(f"/w/{workspace.slug}/llm/providers/{provider.id}")
    assert "sk-…" + key[-4:] in page.text and key not in page.text and key not in detail.text
    # The seeded catalogue at its list prices, with their date; a member sees it, read-only.
    assert "<code>openai/gpt-4.1</code>" in detail.text and "list price 2025-10-01" in detail.text
    assert "$2" in detail.text and "Test connection" not in detail.text
