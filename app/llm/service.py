"""LLM providers and the model catalogue of a workspace: create, change, replace a key, remove; list; and the
hook the agents domain uses to check a model string (:func:`known_model`).

Functions take the workspace's tenant session and an :class:`~app.audit.actor.Actor`, flush but never commit,
and record each change in the workspace's audit log in the caller's transaction. Keys are sealed by the secrets
service (purpose ``llm.provider_key``, bound to the provider's row); only a masked preview is ever shown again.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record_in_workspace
from app.config import Settings
from app.errors import Invalid, NotFound
from app.llm.catalogue import DEMO_PRESET, DEMO_SLUG, PRESETS, parse_model_string, price_list
from app.llm.egress import InternalAddress, base_url_problem, check_host
from app.llm.models import LlmModel, LlmProvider
from app.security.secrets import SecretsService
from app.security.single_line import single_line_problem
from app.sso.dns import DnsLookupError

KEY_PURPOSE = "llm.provider_key"
DEMO_LABEL = "Demo model (scripted, not an AI)"
MAX_PROVIDERS = 50
MAX_KEY = 4000
_SLUG = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")


class ProviderNotFound(NotFound):
    pass


@dataclass(frozen=True)
class ProviderInput:
    """What the "add a provider" form sets. Empty ``slug``, ``label`` and ``base_url`` take the preset's."""

    preset: str
    api_key: str = ""
    slug: str = ""
    label: str = ""
    base_url: str = ""


@dataclass(frozen=True)
class ProviderView:
    provider: LlmProvider
    models: list[LlmModel]

    @property
    def is_demo(self) -> bool:
        return self.provider.preset == DEMO_PRESET


def key_preview(key: str) -> str:
    """``sk-…abcd``: enough to tell keys apart, never enough to use one."""
    if len(key) < 16:
        return "…" + key[-2:] if len(key) >= 8 else "•••"
    return f"{key[:3]}…{key[-4:]}"


# --- reading -------------------------------------------------------------------------------------------------


async def list_providers(session: AsyncSession) -> list[ProviderView]:
    providers = list(await session.scalars(select(LlmProvider).order_by(LlmProvider.created_at, LlmProvider.slug)))
    models = list(await session.scalars(select(LlmModel).order_by(LlmModel.name)))
    return [ProviderView(p, [m for m in models if m.provider_id == p.id]) for p in providers]


async def get_provider(session: AsyncSession, provider_id: uuid.UUID | str) -> ProviderView:
    provider = await session.get(LlmProvider, as_uuid(provider_id, ProviderNotFound("That provider does not exist.")))
    if provider is None:
        raise ProviderNotFound("That provider does not exist.")
    models = list(
        await session.scalars(select(LlmModel).where(LlmModel.provider_id == provider.id).order_by(LlmModel.name))
    )
    return ProviderView(provider, models)


async def known_model(session: AsyncSession, model_string: str) -> bool:
    """Whether ``provider/model`` names a provider of this workspace and a model of its catalogue (the agents
    domain refuses an agent's model otherwise)."""
    parsed = parse_model_string(model_string)
    if parsed is None:
        return False
    found = await session.scalar(
        select(LlmModel.id)
        .join(LlmProvider, LlmProvider.id == LlmModel.provider_id)
        .where(LlmProvider.slug == parsed.provider, LlmModel.name == parsed.model)
    )
    return found is not None


async def model_strings(session: AsyncSession) -> list[str]:
    """Every ``provider/model`` of the catalogue, for pickers."""
    rows = await session.execute(
        select(LlmProvider.slug, LlmModel.name)
        .join(LlmModel, LlmModel.provider_id == LlmProvider.id)
        .order_by(LlmProvider.slug, LlmModel.name)
    )
    return [f"{slug}/{name}" for slug, name in rows]


# --- providers -----------------------------------------------------------------------------------------------


async def create_provider(
    session: AsyncSession,
    secrets: SecretsService,
    settings: Settings,
    *,
    workspace_id: str,
    actor: Actor,
    values: ProviderInput,
) -> LlmProvider:
    """Add a provider (its catalogue seeded from the preset's list); :class:`Invalid` names each bad field."""
    if values.preset == DEMO_PRESET:
        return await add_demo_provider(session, settings, actor=actor)
    preset = PRESETS.get(values.preset)
    if preset is None:
        raise Invalid("Choose a kind of provider.", field="preset")
    slug = (values.slug.strip().lower() or preset.key)[:100]
    label = " ".join(values.label.split()) or preset.label
    base_url = values.base_url.strip() or preset.base_url
    api_key = values.api_key.strip()
    errors: dict[str, str] = {}
    if problem := _slug_problem(slug):
        errors["slug"] = problem
    if problem := _label_problem(label):
        errors["label"] = problem
    if problem := base_url_problem(base_url, private_allowed=settings.llm_private_endpoints):
        errors["base_url"] = problem
    if problem := _key_problem(api_key, required=preset.needs_key):
        errors["api_key"] = problem
    if errors:
        raise Invalid(errors)
    if await session.scalar(select(LlmProvider.id).where(LlmProvider.slug == slug)) is not None:
        raise Invalid(f"A provider named “{slug}” exists already; choose another name.", field="slug")
    if (await session.scalar(select(func.count()).select_from(LlmProvider)) or 0) >= MAX_PROVIDERS:
        raise Invalid(f"A workspace has at most {MAX_PROVIDERS} providers; remove one first.")
    await _check_address(settings, base_url)
    provider = LlmProvider(
        id=uuid.uuid4(),
        slug=slug,
        label=label,
        kind=preset.kind,
        preset=preset.key,
        base_url=base_url,
        last_test_message="",
    )
    await _set_key(session, secrets, workspace_id, provider, api_key)
    session.add(provider)
    await session.flush()
    await _seed_models(session, provider, preset.key)
    await record_in_workspace(session, "llm.provider_added", actor, _details(provider))
    return provider


async def add_demo_provider(session: AsyncSession, settings: Settings, *, actor: Actor) -> LlmProvider:
    """Register the scripted demo model (only where ``marid dev`` offers it); the existing one if it is there."""
    if not settings.demo_llm_enabled:
        raise Invalid("The demo model is only available under `marid dev`.", field="preset")
    existing = await session.scalar(select(LlmProvider).where(LlmProvider.preset == DEMO_PRESET))
    if existing is not None:
        return existing
    slug = DEMO_SLUG
    if await session.scalar(select(LlmProvider.id).where(LlmProvider.slug == slug)) is not None:
        slug = "demo-model"
        if await session.scalar(select(LlmProvider.id).where(LlmProvider.slug == slug)) is not None:
            raise Invalid("Rename the provider called “demo” first.", field="preset")
    provider = LlmProvider(
        id=uuid.uuid4(),
        slug=slug,
        label=DEMO_LABEL,
        kind="openai",
        preset=DEMO_PRESET,
        base_url="",
        key_preview="",
        last_test_message="",
    )
    session.add(provider)
    await session.flush()
    await _seed_models(session, provider, DEMO_PRESET)
    await record_in_workspace(session, "llm.provider_added", actor, _details(provider))
    return provider


async def update_provider(
    session: AsyncSession,
    settings: Settings,
    *,
    actor: Actor,
    provider_id: uuid.UUID | str,
    label: str,
    base_url: str,
) -> LlmProvider:
    """Rename a provider or move it to another base URL (the slug stays: agents name it)."""
    provider = (await get_provider(session, provider_id)).provider
    label = " ".join(label.split())
    base_url = base_url.strip()
    errors: dict[str, str] = {}
    if problem := _label_problem(label):
        errors["label"] = problem
    if provider.preset == DEMO_PRESET:
        base_url = ""
        if label != provider.label:
            errors["label"] = "The demo model keeps its name, so nobody takes it for an AI."
    elif problem := base_url_problem(base_url, private_allowed=settings.llm_private_endpoints):
        errors["base_url"] = problem
    if errors:
        raise Invalid(errors)
    if base_url and base_url != provider.base_url:
        await _check_address(settings, base_url)
    changes = {
        name: {"from": old, "to": new}
        for name, old, new in (("label", provider.label, label), ("base_url", provider.base_url, base_url))
        if old != new
    }
    if not changes:
        return provider
    provider.label, provider.base_url = label, base_url
    provider.updated_at = datetime.now(UTC)
    await session.flush()
    await record_in_workspace(session, "llm.provider_changed", actor, {**_details(provider), **changes})
    return provider


async def replace_key(
    session: AsyncSession,
    secrets: SecretsService,
    *,
    workspace_id: str,
    actor: Actor,
    provider_id: uuid.UUID | str,
    api_key: str,
) -> LlmProvider:
    """Seal a new key for a provider (an empty one removes it, where the preset needs none)."""
    provider = (await get_provider(session, provider_id)).provider
    if provider.preset == DEMO_PRESET:
        raise Invalid("The demo model needs no key.", field="api_key")
    preset = PRESETS[provider.preset]
    api_key = api_key.strip()
    if problem := _key_problem(api_key, required=preset.needs_key):
        raise Invalid(problem, field="api_key")
    await _set_key(session, secrets, workspace_id, provider, api_key)
    provider.updated_at = datetime.now(UTC)
    await session.flush()
    await record_in_workspace(session, "llm.provider_key_replaced", actor, _details(provider))
    return provider


async def delete_provider(session: AsyncSession, *, actor: Actor, provider_id: uuid.UUID | str) -> LlmProvider:
    """Remove a provider and its catalogue; its calls stay in the log (they name it by its slug)."""
    provider = (await get_provider(session, provider_id)).provider
    await session.execute(delete(LlmModel).where(LlmModel.provider_id == provider.id))
    await session.delete(provider)
    await session.flush()
    await record_in_workspace(session, "llm.provider_removed", actor, _details(provider))
    return provider


async def record_test(
    session: AsyncSession, *, actor: Actor, provider_id: uuid.UUID | str, ok: bool, message: str
) -> LlmProvider:
    provider = (await get_provider(session, provider_id)).provider
    provider.last_tested_at = datetime.now(UTC)
    provider.last_test_ok = ok
    provider.last_test_message = message[:500]
    await session.flush()
    outcome = "it works" if ok else "it failed"
    await record_in_workspace(session, "llm.provider_tested", actor, {**_details(provider), "outcome": outcome})
    return provider


async def open_key(
    session: AsyncSession | None, secrets: SecretsService, workspace_id: str, provider: LlmProvider
) -> str:
    """The provider's key in the clear (for calls and connection tests only; never shown, never logged)."""
    if provider.api_key_sealed is None:
        return ""
    return await secrets.open(session, workspace_id, KEY_PURPOSE, str(provider.id), provider.api_key_sealed)


async def _seed_models(session: AsyncSession, provider: LlmProvider, preset: str) -> None:
    prices = price_list()
    for seed in prices.presets.get(preset, []):
        session.add(
            LlmModel(
                id=uuid.uuid4(),
                provider_id=provider.id,
                name=seed.name,
                label=seed.label,
                input_price=seed.prices.input,
                output_price=seed.prices.output,
                cache_read_price=seed.prices.cache_read,
                cache_write_price=seed.prices.cache_write,
                context_window=seed.context_window,
                source="seeded",
                prices_as_of=prices.as_of,
            )
        )
    await session.flush()


# --- checks --------------------------------------------------------------------------------------------------


def as_uuid(value: uuid.UUID | str, missing: NotFound) -> uuid.UUID:
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise missing from None


def _slug_problem(slug: str) -> str | None:
    if not _SLUG.fullmatch(slug):
        return "A name is 1-40 lowercase letters, digits or hyphens (it starts model strings: name/model)."
    return None


def _label_problem(label: str) -> str | None:
    if problem := single_line_problem(label, "A label"):
        return problem
    if not label:
        return "Give the provider a label."
    if len(label) > 80:
        return "A label is at most 80 characters."
    return None


def _key_problem(key: str, *, required: bool) -> str | None:
    if not key:
        return "Paste the provider's API key." if required else None
    if len(key) > MAX_KEY:
        return f"An API key is at most {MAX_KEY} characters."
    if any(ord(char) < 33 or ord(char) == 127 for char in key):
        return "An API key has no spaces or control characters."
    return None


async def _check_address(settings: Settings, base_url: str) -> None:
    try:
        await check_host(settings, base_url)
    except (InternalAddress, DnsLookupError) as refused:
        raise Invalid(str(refused), field="base_url") from None


async def _set_key(
    session: AsyncSession, secrets: SecretsService, workspace_id: str, provider: LlmProvider, api_key: str
) -> None:
    if not api_key:
        provider.api_key_sealed, provider.key_preview = None, ""
        return
    provider.api_key_sealed = await secrets.seal(session, workspace_id, KEY_PURPOSE, str(provider.id), api_key)
    provider.key_preview = key_preview(api_key)


def _details(provider: LlmProvider) -> dict[str, str]:
    """What the audit log says about a provider: never its key, not even the preview."""
    return {"provider_id": str(provider.id), "label": provider.label, "slug": provider.slug, "kind": provider.kind}
