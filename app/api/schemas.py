"""The JSON shapes of the API (pydantic): what each operation answers and accepts. The OpenAPI document's
``components.schemas`` are generated from these classes, so the documentation cannot drift from the code."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from app.api.principal import Scope
from app.apikeys.format import KeyKind
from app.tenants.permissions import Role


class Body(BaseModel):
    """A request body: strict JSON types, and unknown fields are refused (a typo is not silently ignored)."""

    model_config = ConfigDict(extra="forbid", strict=True)


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: `not_found`, `validation_error`, `insufficient_scope`…")
    message: str = Field(description="What went wrong, in words for a person.")
    details: dict[str, Any] = Field(
        description="Specifics. For `validation_error`: `errors`, a list of `{field, message}`."
    )


class Error(BaseModel):
    """Every error answer of the API has this body."""

    error: ErrorDetail


def page_of(item: type[BaseModel], name: str) -> type[BaseModel]:
    """The envelope of a listing: ``{"data": [item, ...], "next_cursor": str | null}``."""
    return create_model(
        name,
        __doc__=f"A page of {item.__name__} items, newest or most relevant first.",
        data=(list[item], ...),  # type: ignore[valid-type]
        next_cursor=(
            str | None,
            Field(description="Pass as `cursor` to get the next page; null on the last page."),
        ),
    )


# --- me ------------------------------------------------------------------------------------------------------


class UserOut(BaseModel):
    id: uuid.UUID
    email: str
    display_name: str
    email_verified: bool
    two_factor_enabled: bool
    created_at: datetime


class AuthInfo(BaseModel):
    kind: Literal["session", "personal_key", "service_key"]
    scopes: list[Scope]
    workspace_id: str | None = Field(description="The workspace a key is bound to; null for a session.")
    key_id: uuid.UUID | None
    acts_as: Role | None = Field(
        None,
        description="For a key: the role it acts with in its workspace (a `read` key acts as a viewer, whoever owns "
        "it; a personal key never above its owner's role). Null for a session, which acts with the person's own "
        "role in each workspace.",
    )


class Me(BaseModel):
    """Who is calling: the user (null for a service key) and how they authenticated."""

    user: UserOut | None
    auth: AuthInfo


# --- workspaces ----------------------------------------------------------------------------------------------


class WorkspaceOut(BaseModel):
    id: str
    slug: str
    name: str
    require_2fa: bool
    created_at: datetime
    role: Role = Field(
        description="Your role in this workspace (for a service key, which belongs to no one: the role it acts as)."
    )
    acts_as: Role = Field(
        description="What this call may do here, as a role: your role, capped by the key's access (an owner's `read` "
        "key acts as a viewer)."
    )


WorkspaceList = page_of(WorkspaceOut, "WorkspaceList")


class WorkspacePatch(Body):
    """Fields to change; omitted fields stay as they are."""

    name: str | None = Field(None, max_length=1000, description="1-120 characters after spaces are collapsed.")
    require_2fa: bool | None = Field(None, description="Members without 2FA must enrol before using the workspace.")


# --- members and invitations ---------------------------------------------------------------------------------


class MemberOut(BaseModel):
    user_id: uuid.UUID
    email: str
    display_name: str
    role: Role
    joined_at: datetime


MemberList = page_of(MemberOut, "MemberList")


class MemberPatch(Body):
    role: Role = Field(description="admin, member or viewer; ownership moves only by a transfer.")


class InvitationOut(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    invited_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime


InvitationList = page_of(InvitationOut, "InvitationList")


Address = Annotated[str, Field(max_length=320, json_schema_extra={"format": "email"})]


class InvitationCreate(Body):
    emails: list[Address] = Field(min_length=1, max_length=20, description="Up to 20 addresses, invited at once.")
    role: Role = Field(Role.MEMBER, description="The role they join with (admin, member or viewer).")


class InvitationsCreated(BaseModel):
    data: list[InvitationOut]


# --- sessions ------------------------------------------------------------------------------------------------


class SessionOut(BaseModel):
    id: uuid.UUID
    device: str = Field(description="A readable name from the user agent, like “Firefox 128 on Linux”.")
    ip: str
    user_agent: str
    created_at: datetime
    last_seen_at: datetime
    expires_at: datetime
    current: bool = Field(description="This is the session making the request.")


SessionList = page_of(SessionOut, "SessionList")


class AccountEventOut(BaseModel):
    id: int
    at: datetime
    action: str = Field(description="`auth.login`, `auth.login_failed`, `auth.password_reset`, `auth.2fa_disabled`…")
    sentence: str = Field(description="What happened, in words, as the account security page shows it.")
    ip: str
    user_agent: str
    device: str = Field(description="A readable name from the user agent, like “Firefox 128 on Linux”.")
    details: dict[str, Any]


AccountEventList = page_of(AccountEventOut, "AccountEventList")


# --- audit log -----------------------------------------------------------------------------------------------


class AuditEventOut(BaseModel):
    id: int
    at: datetime
    actor_id: str | None
    actor: str | None = Field(description="“Name <e-mail>” of the actor, if they still have an account.")
    action: str
    action_label: str
    ip: str
    details: dict[str, Any]
    summary: str = Field(description="The details in one line, as the audit log page shows them.")


AuditList = page_of(AuditEventOut, "AuditList")


# --- API keys ------------------------------------------------------------------------------------------------


class ApiKeyOut(BaseModel):
    id: uuid.UUID
    name: str
    kind: KeyKind = Field(description="personal: acts as its owner; service: acts as itself.")
    scope: Scope = Field(description="The highest scope granted (each includes the ones below it).")
    effective_scope: Scope | None = Field(
        description="What the key may do now (a personal key is capped by its owner's role); null when unusable."
    )
    status: Literal["active", "expired", "revoked", "orphaned"]
    prefix: str = Field(description="The key's public beginning, like `marid_pk_AbCd1234…`.")
    owner: str | None = Field(description="A personal key's owner, “Name <e-mail>”; null for service keys.")
    user_id: uuid.UUID | None
    created_by: uuid.UUID | None
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    last_used_ip: str | None
    revoked_at: datetime | None
    mine: bool
    revocable: bool = Field(description="The caller may revoke it.")


ApiKeyList = page_of(ApiKeyOut, "ApiKeyList")


class ApiKeyCreate(Body):
    name: str = Field(max_length=1000, description="What will use the key; 1-80 characters.")
    kind: KeyKind = KeyKind.PERSONAL
    scope: Scope = Scope.READ
    expires_at: datetime | None = Field(
        None, description="When it stops working (with a time zone; at most five years ahead); null: never."
    )


class ApiKeyCreated(ApiKeyOut):
    """The new key, with the key itself: shown this once and never again, so store it now."""

    token: str = Field(description="The key: send it as `Authorization: Bearer <token>`.")
