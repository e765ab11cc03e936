"""Imports every model so that both metadata collections are complete (for Alembic and the tests)."""

from app.account.models import AccountEvent
from app.agents.models import Agent
from app.apikeys.models import ApiKey
from app.audit.models import AuditEvent, AuditOutbox
from app.auth.models import PasswordReset, RecoveryCode, User, UserSession
from app.db import PublicBase, TenantBase
from app.llm.models import LlmBudget, LlmCall, LlmModel, LlmProvider, LlmToken
from app.mail.models import OutboxMessage
from app.pipelines.models import PipelineRecord, PipelineVersion
from app.runs.models import Run, RunLoopItem, RunStep
from app.secrets.models import SecretGrant, WorkspaceSecret
from app.security.models import WorkspaceKey
from app.sso.models import SsoConnection, SsoDomain, SsoIdentity, SsoStepUp
from app.tenants.models import Invitation, Membership, Workspace

__all__ = [
    "AccountEvent",
    "Agent",
    "ApiKey",
    "AuditEvent",
    "AuditOutbox",
    "Invitation",
    "LlmBudget",
    "LlmCall",
    "LlmModel",
    "LlmProvider",
    "LlmToken",
    "Membership",
    "OutboxMessage",
    "PasswordReset",
    "PipelineRecord",
    "PipelineVersion",
    "PublicBase",
    "RecoveryCode",
    "Run",
    "RunLoopItem",
    "RunStep",
    "SecretGrant",
    "SsoConnection",
    "SsoDomain",
    "SsoIdentity",
    "SsoStepUp",
    "TenantBase",
    "User",
    "UserSession",
    "Workspace",
    "WorkspaceKey",
    "WorkspaceSecret",
]
