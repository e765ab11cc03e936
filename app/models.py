"""Imports every model so that both metadata collections are complete (for Alembic and the tests)."""

from app.audit.models import AuditEvent
from app.auth.models import User, UserSession
from app.db import PublicBase, TenantBase
from app.tenants.models import Membership, Workspace

__all__ = ["AuditEvent", "Membership", "PublicBase", "TenantBase", "User", "UserSession", "Workspace"]
