"""Single sign-on: a workspace's provider settings, finding the workspace for /sso, and what a verified
sign-in does (link, provision, refuse). No HTTP here; services flush, the caller commits.

Identities are bound by (issuer, subject), never by e-mail address alone (ASVS 6.8.1): an address only
decides whether a *new* person may join, and only when the provider says it verified it and its domain is
one the workspace allows. An address that already has a Marid account is linked only by its owner, signed
in, starting single sign-on themselves; otherwise anyone controlling a provider could take that account.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.auth.models import User, UserSession
from app.auth.service import normalise_email, user_by_email
from app.auth.sessions import now
from app.config import Settings
from app.security.crypto import Keyring
from app.sso.models import SsoConnection, SsoIdentity
from app.sso.oidc import OidcError, issuer_problem
from app.tenants.models import Membership, Workspace
from app.tenants.permissions import Role

ASSIGNABLE_ROLES = (Role.ADMIN.value, Role.MEMBER.value, Role.VIEWER.value)
MAX_DOMAINS = 50
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
_CONTROL = re.compile(r"[\x00-\x20\x7f]")


class SsoConfigError(Exception):
    """Field name -> message for the settings form."""

    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


class AmbiguousDomain(Exception):
    """More than one workspace uses single sign-on for this e-mail domain."""


def _keyring(settings: Settings) -> Keyring:
    return Keyring(settings.encryption_key.get_secret_value())


def _aad(workspace_id: str) -> bytes:
    return f"sso:{workspace_id}".encode()


def encrypt_secret(settings: Settings, workspace_id: str, secret: str) -> str:
    return _keyring(settings).encrypt(secret.encode(), aad=_aad(workspace_id))


def decrypt_secret(settings: Settings, connection: SsoConnection) -> str:
    return _keyring(settings).decrypt(connection.client_secret_enc, aad=_aad(connection.workspace_id)).decode()


def domain_problem(domain: str) -> str | None:
    labels = domain.split(".")
    if len(domain) > 253 or len(labels) < 2 or not all(_LABEL.match(label) for label in labels):
        return f"“{domain}” is not a domain name like example.com."
    if labels[-1].isdigit():
        return f"“{domain}” is not a domain name like example.com."
    return None


def parse_domains(raw: str) -> list[str]:
    """Lower-case, de-duplicated domains from text separated by commas, spaces or new lines."""
    found: list[str] = []
    for part in re.split(r"[\s,;]+", raw.strip().lower()):
        part = part.strip().lstrip("@").rstrip(".")
        if not part:
            continue
        if problem := domain_problem(part):
            raise SsoConfigError({"allowed_domains": problem})
        if part not in found:
            found.append(part)
    if len(found) > MAX_DOMAINS:
        raise SsoConfigError({"allowed_domains": f"List at most {MAX_DOMAINS} domains."})
    return found


def _flag(raw: str | None) -> bool:
    return raw in {"on", "true", "1", "yes"}


async def get_connection(db: AsyncSession, workspace_id: str) -> SsoConnection | None:
    return await db.get(SsoConnection, workspace_id)


async def save_connection(
    db: AsyncSession, settings: Settings, *, workspace_id: str, form: dict[str, str]
) -> tuple[SsoConnection, dict[str, dict[str, Any]]]:
    """Validate and apply the settings form; returns the row and what changed (the secret only as a flag).

    Raises SsoConfigError with every problem, changing nothing.
    """
    await db.execute(select(Workspace.id).where(Workspace.id == workspace_id).with_for_update())
    connection = await db.get(SsoConnection, workspace_id, with_for_update=True)
    issuer = form.get("issuer", "").strip()
    client_id = form.get("client_id", "").strip()
    secret = form.get("client_secret", "")
    role = form.get("default_role", "").strip()
    enabled, enforce = _flag(form.get("enabled")), _flag(form.get("enforce_sso"))
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
    try:
        domains = parse_domains(form.get("allowed_domains", ""))
    except SsoConfigError as invalid:
        errors |= invalid.errors
        domains = []
    if role not in ASSIGNABLE_ROLES:
        errors["default_role"] = "Choose admin, member or viewer."
    if enforce and not enabled:
        errors["enforce_sso"] = "Turn single sign-on on before requiring it."
    if errors:
        raise SsoConfigError(errors)

    if connection is None:
        connection = SsoConnection(workspace_id=workspace_id, issuer="", client_id="", client_secret_enc="")
        connection.allowed_domains, connection.default_role = [], ""
        connection.enabled = connection.enforce_sso = False
        db.add(connection)
        before: dict[str, Any] = {}
    else:
        before = _public_fields(connection)
    connection.issuer, connection.client_id = issuer, client_id
    connection.allowed_domains, connection.default_role = domains, role
    connection.enabled, connection.enforce_sso = enabled, enforce
    if issuer != before.get("issuer"):
        # A test of the old provider says nothing about the new one.
        connection.last_tested_at, connection.last_test_ok, connection.last_test_error = None, None, None
    after = _public_fields(connection)
    changes = {key: {"from": before.get(key), "to": value} for key, value in after.items() if before.get(key) != value}
    if secret:
        connection.client_secret_enc = encrypt_secret(settings, workspace_id, secret)
        changes["client_secret"] = {"from": "…", "to": "(changed)"}
    if changes:
        connection.updated_at = now()
    await db.flush()
    return connection, changes


def _public_fields(connection: SsoConnection) -> dict[str, Any]:
    return {
        "issuer": connection.issuer,
        "client_id": connection.client_id,
        "allowed_domains": list(connection.allowed_domains),
        "default_role": connection.default_role,
        "enabled": connection.enabled,
        "enforce_sso": connection.enforce_sso,
    }


async def record_test(db: AsyncSession, workspace_id: str, *, issuer: str, ok: bool, error: str | None) -> bool:
    """Keep the outcome of "Test connection" if it tested the saved issuer; whether it was kept."""
    connection = await db.get(SsoConnection, workspace_id, with_for_update=True)
    if connection is None or connection.issuer != issuer:
        return False
    connection.last_tested_at, connection.last_test_ok = now(), ok
    connection.last_test_error = None if ok else (error or "failed")[:500]
    await db.flush()
    return True


async def find_connection_for(db: AsyncSession, identifier: str) -> tuple[Workspace, SsoConnection] | None:
    """The workspace (with SSO on) for an e-mail address (by its domain) or a workspace slug; None if none.

    Raises AmbiguousDomain when several workspaces claim the address's domain.
    """
    identifier = identifier.strip().lower()
    query = select(Workspace, SsoConnection).join(SsoConnection, SsoConnection.workspace_id == Workspace.id)
    query = query.where(SsoConnection.enabled.is_(True))
    if "@" in identifier:
        domain = identifier.rsplit("@", 1)[1]
        if not domain or domain_problem(domain):
            return None
        rows = (await db.execute(query.where(SsoConnection.allowed_domains.contains([domain])).limit(2))).all()
        if len(rows) > 1:
            raise AmbiguousDomain(domain)
    else:
        rows = (await db.execute(query.where(Workspace.slug == identifier))).all()
    if not rows:
        return None
    workspace, connection = rows[0]
    return workspace, connection


@dataclass
class SignInOutcome:
    user: User
    identity: SsoIdentity
    membership: Membership
    created_user: bool
    linked: bool
    provisioned: bool


def _verified_email(claims: dict[str, Any]) -> str | None:
    email = claims.get("email")
    verified = claims.get("email_verified")
    if not isinstance(email, str) or not (verified is True or verified == "true"):
        return None
    return normalise_email(email)


async def complete_sign_in(
    db: AsyncSession,
    *,
    connection: SsoConnection,
    claims: dict[str, Any],
    initiator_id: uuid.UUID | None,
) -> SignInOutcome:
    """What a verified ID token means for Marid: the user it signs in, linked and a member of the workspace.

    ``initiator_id`` is the Marid user who was signed in when this sign-in started (and still is). Raises
    OidcError (reason, message) when the sign-in must be refused; nothing is changed then.
    """
    issuer, subject = connection.issuer, str(claims["sub"])
    email = _verified_email(claims)
    domain_allowed = email is not None and email.rsplit("@", 1)[-1] in connection.allowed_domains
    identity = await db.scalar(
        select(SsoIdentity).where(SsoIdentity.issuer == issuer, SsoIdentity.subject == subject).with_for_update()
    )
    created_user = linked = False
    if identity is not None:
        user = await db.get(User, identity.user_id)
        assert user is not None  # the foreign key cascades
        if initiator_id is not None and initiator_id != user.id:
            raise OidcError(
                "identity_linked_elsewhere",
                "This account at your identity provider is linked to another Marid account. "
                "Sign out, then use Continue with SSO again.",
            )
    else:
        if email is None:
            raise OidcError(
                "email_unverified",
                "Your identity provider did not send a verified e-mail address, so Marid cannot set up your account.",
            )
        if not domain_allowed:
            raise OidcError(
                "domain_not_allowed", f"Addresses at {email.rsplit('@', 1)[-1]} may not join this workspace."
            )
        existing = await user_by_email(db, email)
        if existing is None:
            user = User(email=email, display_name=_display_name(claims), password_hash=None, email_verified_at=now())
            db.add(user)
            await db.flush()
            created_user = True
        elif initiator_id == existing.id:
            user = existing
        else:
            raise OidcError(
                "account_exists",
                f"A Marid account already uses {email}. Sign in to it with your password first, "
                "then use Continue with SSO to link it to your identity provider.",
            )
        other = await db.scalar(
            select(SsoIdentity.id).where(SsoIdentity.issuer == issuer, SsoIdentity.user_id == user.id)
        )
        if other is not None:
            raise OidcError(
                "identity_conflict",
                "Your Marid account is already linked to a different account at this identity provider.",
            )
        identity = SsoIdentity(
            issuer=issuer, subject=subject, user_id=user.id, workspace_id=connection.workspace_id, email_at_link=email
        )
        db.add(identity)
        linked = not created_user
    if user.email_verified_at is None and email == user.email:
        user.email_verified_at = now()
    identity.last_login_at = now()

    membership = await db.get(Membership, (connection.workspace_id, user.id))
    provisioned = False
    if membership is None:
        if not domain_allowed:
            raise OidcError(
                "domain_not_allowed",
                "Your identity provider did not send a verified address at a domain this workspace allows.",
            )
        membership = Membership(workspace_id=connection.workspace_id, user_id=user.id, role=connection.default_role)
        db.add(membership)
        provisioned = True
    await db.flush()
    return SignInOutcome(user, identity, membership, created_user, linked, provisioned)


def _display_name(claims: dict[str, Any]) -> str:
    name = claims.get("name")
    return " ".join(name.split())[:120] if isinstance(name, str) else ""


async def enforcing_workspaces(db: AsyncSession, user: User) -> list[Workspace]:
    """Workspaces of ``user`` that require single sign-on of them (everyone there but the owner)."""
    rows = await db.scalars(
        select(Workspace)
        .join(Membership, Membership.workspace_id == Workspace.id)
        .join(SsoConnection, SsoConnection.workspace_id == Workspace.id)
        .where(
            Membership.user_id == user.id,
            Membership.role != Role.OWNER.value,
            SsoConnection.enabled.is_(True),
            SsoConnection.enforce_sso.is_(True),
        )
        .order_by(Workspace.name)
    )
    return list(rows)


async def password_login_blocked(db_session: AsyncSession, user: User) -> str | None:
    """Why ``user`` may not sign in with a password, or None. The owner keeps password sign-in (break-glass)."""
    workspaces = await enforcing_workspaces(db_session, user)
    if not workspaces:
        return None
    return f"Your workspace “{workspaces[0].name}” requires single sign-on. Use Continue with SSO."


async def end_password_sessions(db: AsyncSession, workspace_id: str) -> int:
    """End the password sessions of the workspace's members who must now use SSO (everyone but the owner)."""
    members = select(Membership.user_id).where(
        Membership.workspace_id == workspace_id, Membership.role != Role.OWNER.value
    )
    result = await db.execute(
        delete(UserSession).where(UserSession.user_id.in_(members), UserSession.auth_method == "password")
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
