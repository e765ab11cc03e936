"""Declarative bases and names: platform tables in ``public``, workspace tables in a placeholder schema."""

from __future__ import annotations

import re

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

# Tenant tables are declared in this placeholder schema; sessions and migrations swap in the real one.
TENANT_SCHEMA = "marid_tenant"
_WORKSPACE_ID = re.compile(r"^[a-z0-9]{12}$")

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class PublicBase(DeclarativeBase):
    """Platform tables (users, workspaces, memberships, sessions...) in schema ``public``."""

    metadata = MetaData(schema="public", naming_convention=NAMING_CONVENTION)


class TenantBase(DeclarativeBase):
    """Workspace tables; only reachable through :meth:`Database.tenant_session`.

    A table whose ``info`` has ``append_only=True`` gets INSERT and SELECT only for the workspace role
    (see :mod:`app.tenants.grants`).
    """

    metadata = MetaData(schema=TENANT_SCHEMA, naming_convention=NAMING_CONVENTION)


def schema_for(workspace_id: str) -> str:
    """The schema (and role) name of a workspace; refuses anything but a well-formed workspace id."""
    if not _WORKSPACE_ID.fullmatch(workspace_id) or len(workspace_id) != 12:
        raise ValueError(f"not a workspace id: {workspace_id!r}")
    return f"ws_{workspace_id}"


def quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
