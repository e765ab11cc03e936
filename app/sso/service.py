"""Single sign-on: a workspace's provider settings, and finding the workspace for /sso. No HTTP here; services
flush, the caller commits; each change records its audit entry in the caller's transaction.

What a sign-in does is :mod:`app.sso.signin`; the domains a workspace proved are :mod:`app.sso.domains`;
what "Require single sign-on" binds is :mod:`app.sso.enforcement`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.audit.actor import Actor
from app.audit.service import record
from app.auth.sessions import now
from app.config import Settings
from app.errors import Invalid
from app.security.secrets import SecretsService
from app.sso.domains import domain_problem
from app.sso.enforcement import end_managed_password_sessions, managed_accounts_on
from app.sso.models import SsoConnection, SsoDomain
from app.sso.oidc import issuer_problem
from app.tenants.models import Workspace
from app.tenants.permissions import Role

ASSIGNABLE_ROLES = (Role.ADMIN.value, Role.MEMBER.value, Role.VIEWER.value)
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class SsoConfigError(Invalid):
    """Field name -> message for the settings form (``errors``)."""


@dataclass(frozen=True)
class ConnectionSettings:
    """What the settings form sets. ``client_secret`` empty: keep the stored one. ``confirm_managed``: the admin
    saw whom managed accounts affect (needed to turn them on)."""

    issuer: str
    client_id: str
    client_secret: str = ""
    default_role: str = "member"
    enabled: bool = False
    enforce_sso: bool = False
    managed_accounts: bool = False
    confirm_managed: bool = False


# The client secret is sealed by the secrets service under the workspace's data key, bound to its row (the
# connection's key is the workspace id).
SECRET_PURPOSE = "sso.client_secret"


def legacy_secret_aad(workspace_id: str) -> bytes:
    """Before the secrets service, client secrets were sealed under the master key itself, with this AAD."""
    return f"sso:{workspace_id}".encode()


async def encrypt_secret(secrets: SecretsService, db: AsyncSession, workspace_id: str, secret: str) -> str:
    return await secrets.seal(db, workspace_id, SECRET_PURPOSE, workspace_id, secret)


async def decrypt_secret(secrets: SecretsService, connection: SsoConnection, db: AsyncSession | None = None) -> str:
    """The client secret in the clear, whether sealed by the secrets service or (not yet migrated) before it."""
    sealed, workspace_id = connection.client_secret_enc, connection.workspace_id
    if secrets.keyring.owns(sealed):
        return secrets.keyring.decrypt(sealed, aad=legacy_secret_aad(workspace_id)).decode()
    return await secrets.open(db, workspace_id, SECRET_PURPOSE, workspace_id, sealed)


async def get_connection(db: AsyncSession, workspace_id: str) -> SsoConnection | None:
    return await db.get(SsoConnection, workspace_id)


async def save_connection(
    db: AsyncSession,
    settings: Settings,
    secrets: SecretsService,
    *,
    workspace_id: str,
    values: ConnectionSettings,
    actor: Actor,
) -> tuple[SsoConnection, dict[str, dict[str, Any]]]:
    """Validate and apply the settings; returns the row and what changed (the secret only as a flag).

    Raises SsoConfigError with every problem, changing nothing. Turning managed accounts on needs
    ``confirm_managed`` too: the page showed who it affects. Turning enforcement or managed accounts on ends
    the password sessions of the members it makes managed. Audit: ``sso.configured`` and, when enforcement
    changed, ``sso.enforced_changed``.
    """
    await db.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())
    connection = await db.get(SsoConnection, workspace_id, with_for_update=True)
    issuer, client_id, secret = values.issuer.strip(), values.client_id.strip(), values.client_secret
    role = values.default_role.strip()
    enabled, enforce, managed = values.enabled, values.enforce_sso, values.managed_accounts
    errors: dict[str, str] = {}
    if problem := issuer_problem(issuer, production=settings.is_production):
        errors["issuer"] = problem
    if not 1 <= len(client_id) <= 255:
        errors["client_id"] = "Enter the client ID the provider gave you (1 to 255 characters)."
    elif _CONTROL.search(client_id):
        errors["client_id"] = "The client ID must not contain spaces or control characters."
    if secret and (len(secret) > 1024 or _CONTROL.search(secret)):
        errors["client_secret"] = "The client secret must be at most 1,024 characters, without spaces."
    elif not secret and connection is None:
        errors["client_secret"] = "Enter the client secret the provider gave you."
    if role not in ASSIGNABLE_ROLES:
        errors["default_role"] = "Choose admin, member or viewer."
    if enforce and not enabled:
        errors["enforce_sso"] = "Turn single sign-on on before requiring it."
    if managed and not enforce:
        errors["managed_accounts"] = "Require single sign-on before making members' accounts managed."
    elif managed and not (connection and connection.managed_accounts) and not values.confirm_managed:
        errors["confirm_managed"] = "Check the members listed below, then confirm that their accounts become managed."
    if errors:
        raise SsoConfigError(errors)

    if connection is None:
        connection = SsoConnection(workspace_id=workspace_id, issuer="", client_id="", client_secret_enc="")
        connection.default_role = ""
        connection.enabled = connection.enforce_sso = connection.managed_accounts = False
        db.add(connection)
        before: dict[str, Any] = {}
    else:
        before = _public_fields(connection)
    connection.issuer, connection.client_id = issuer, client_id
    connection.default_role = role
    connection.enabled, connection.enforce_sso, connection.managed_accounts = enabled, enforce, managed
    if issuer != before.get("issuer"):
        # A test of the old provider says nothing about the new one.
        connection.last_tested_at, connection.last_test_ok, connection.last_test_error = None, None, None
    after = _public_fields(connection)
    changes = {key: {"from": before.get(key), "to": value} for key, value in after.items() if before.get(key) != value}
    if secret:
        connection.client_secret_enc = await encrypt_secret(secrets, db, workspace_id, secret)
        changes["client_secret"] = {"from": "…", "to": "(changed)"}
    if changes:
        connection.updated_at = now()
    await db.flush()
    if changes:
        record(db, workspace_id, "sso.configured", actor, {"changes": changes})
    if changes.keys() & {"enabled", "enforce_sso", "managed_accounts"}:
        enforced: dict[str, Any] = {
            "enforce_sso": connection.enforce_sso and connection.enabled,
            "managed_accounts": connection.managed_accounts and connection.enforce_sso and connection.enabled,
        }
        if await managed_accounts_on(db, workspace_id):
            # Managed accounts may not use a password any more: the password sessions they have end too.
            enforced["password_sessions_ended"] = await end_managed_password_sessions(db, workspace_id)
        record(db, workspace_id, "sso.enforced_changed", actor, enforced)
    return connection, changes


def _public_fields(connection: SsoConnection) -> dict[str, Any]:
    return {
        "issuer": connection.issuer,
        "client_id": connection.client_id,
        "default_role": connection.default_role,
        "enabled": connection.enabled,
        "enforce_sso": connection.enforce_sso,
        "managed_accounts": connection.managed_accounts,
    }


async def record_test(
    db: AsyncSession, workspace_id: str, *, issuer: str, ok: bool, error: str | None, actor: Actor
) -> bool:
    """Keep the outcome of "Test connection" if it tested the saved issuer; whether it was kept. Audit:
    ``sso.tested`` either way."""
    record(db, workspace_id, "sso.tested", actor, {"issuer": issuer, "ok": ok, "error": None if ok else error})
    connection = await db.get(SsoConnection, workspace_id, with_for_update=True)
    if connection is None or connection.issuer != issuer:
        return False
    connection.last_tested_at, connection.last_test_ok = now(), ok
    connection.last_test_error = None if ok else (error or "failed")[:500]
    await db.flush()
    return True


async def find_connection_for(db: AsyncSession, identifier: str) -> tuple[Workspace, SsoConnection] | None:
    """The workspace (with SSO on) for an e-mail address or a workspace slug; None if none.

    An address finds the one workspace that has verified its domain: listing a domain without proving it
    never sends anyone anywhere.
    """
    identifier = identifier.strip().lower()
    query = select(Workspace, SsoConnection).join(SsoConnection, SsoConnection.workspace_id == Workspace.id)
    query = query.where(SsoConnection.enabled.is_(True))
    if "@" in identifier:
        domain = identifier.rsplit("@", 1)[1]
        if not domain or domain_problem(domain):
            return None
        verified = select(SsoDomain.workspace_id).where(SsoDomain.domain == domain, SsoDomain.verified_at.is_not(None))
        rows = (await db.execute(query.where(Workspace.id.in_(verified)))).all()
    else:
        rows = (await db.execute(query.where(Workspace.slug == identifier))).all()
    if not rows:
        return None
    workspace, connection = rows[0]
    return workspace, connection
