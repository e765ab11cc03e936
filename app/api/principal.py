"""Who is calling the JSON API, and what they may do.

Two kinds of credential reach ``/api/v1``: the browser's session cookie (CSRF-protected like any form), and
API keys sent as ``Authorization: Bearer marid_...``. Every key belongs to exactly one workspace. A personal
key acts as its owner in that workspace (never more than the owner's role allows); a service key acts as
itself, with the role its scopes imply.

The authentication step (``app.apikeys``) stores an :class:`ApiPrincipal` in ``request.state.api_principal``
for Bearer requests; session requests get one built from the signed-in user.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from app.auth.models import User


class Scope(StrEnum):
    READ = "read"
    WRITE = "write"
    ADMIN = "admin"


# A scope includes the ones below it.
SCOPE_ORDER = (Scope.READ, Scope.WRITE, Scope.ADMIN)


def implied(scope: Scope) -> frozenset[Scope]:
    return frozenset(SCOPE_ORDER[: SCOPE_ORDER.index(scope) + 1])


@dataclass(frozen=True)
class ApiPrincipal:
    kind: Literal["session", "personal_key", "service_key"]
    # The acting user: the session's or the personal key's owner; None for a service key.
    user: User | None
    # The one workspace a key is bound to; None for a session (it may act in all the user's workspaces).
    workspace_id: str | None
    scopes: frozenset[Scope]
    key_id: uuid.UUID | None = None

    def allows(self, scope: Scope) -> bool:
        return scope in self.scopes

    def may_use_workspace(self, workspace_id: str) -> bool:
        return self.workspace_id is None or self.workspace_id == workspace_id
