"""The JSON shapes of the secrets API. No shape holds a value on the way out: only its masked preview."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import BaseModel, Field

from app.api.schemas import Body, page_of


class GrantOut(BaseModel):
    id: str = Field(description="The agent's id.")
    name: str


class SecretOut(BaseModel):
    id: uuid.UUID
    name: str = Field(description="Like an environment variable: `GITHUB_TOKEN`.")
    description: str
    preview: str = Field(description="A masked hint of the value (never more than a quarter of it).")
    agents: list[GrantOut] = Field(description="The agents that get it.")
    created_at: datetime
    created_by: uuid.UUID | None
    updated_at: datetime
    updated_by: uuid.UUID | None
    value_updated_at: datetime


SecretList = page_of(SecretOut, "SecretList")


class SecretCreate(Body):
    name: str = Field(max_length=1000, description="Capital letters, digits and _, starting with a letter; 1-64.")
    value: str = Field(
        max_length=40_000,
        description="At most 16,384 characters. Sealed at once; never returned by any call.",
        json_schema_extra={"writeOnly": True, "format": "password"},
    )
    description: str = Field("", max_length=1000, description="At most 200 characters.")


class SecretPatch(Body):
    """Fields to change; omitted fields stay as they are."""

    description: str | None = Field(None, max_length=1000, description="At most 200 characters.")
    value: str | None = Field(
        None,
        max_length=40_000,
        description="A new value for every agent that gets it; never returned.",
        json_schema_extra={"writeOnly": True, "format": "password"},
    )


class SecretGrants(Body):
    agents: list[str] = Field(max_length=500, description="The ids of exactly the agents that get it from now on.")
