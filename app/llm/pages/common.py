"""What the LLM pages share: their unit of work, the process's gateway, and a provider as the gateway sees it."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from sqlalchemy.ext.asyncio import AsyncSession
from starlette.requests import Request

from app.audit.unit_of_work import workspace_change
from app.llm.directory import Provider, provider_of
from app.llm.gateway import Gateway
from app.llm.models import LlmProvider
from app.llm.service import open_key
from app.tenants.context import WorkspaceContext
from app.web.state import bus_of, db_of, secrets_of, settings_of


def llm_changes(request: Request, context: WorkspaceContext) -> AbstractAsyncContextManager[AsyncSession]:
    """A unit of work on the workspace's own tables, its audit entries published once it commits."""
    return workspace_change(db_of(request), bus_of(request), context.workspace.id)


def gateway_of(request: Request) -> Gateway:
    gateway: Gateway = request.app.state.llm
    return gateway


def changed(request: Request, context: WorkspaceContext) -> None:
    """This process's gateway re-reads the workspace's providers, prices and budget on its next call."""
    gateway_of(request).directory.forget(context.workspace.id)


async def as_gateway_provider(
    request: Request, context: WorkspaceContext, session: AsyncSession, row: LlmProvider
) -> Provider:
    """The provider with its key opened, where the gateway would send a call (for "Test connection")."""
    key = await open_key(session, secrets_of(request), context.workspace.id, row)
    return provider_of(settings_of(request), row, key)
