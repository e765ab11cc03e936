"""Small helpers shared by the account pages."""

from __future__ import annotations

from starlette.requests import Request

from app.auth.middleware import signed_in
from app.auth.models import UserSession
from app.tenants.models import Workspace

# One budget per account for every password or code typed on the account pages (enrolment, disabling,
# new recovery codes, password reset): 10 tries per 15 minutes, so a stolen session cannot guess a code.
CODE_ATTEMPTS = 10
CODE_WINDOW = 900
# What that budget counts, as its refusal says it ("Too many wrong passwords or codes in a short time...").
WRONG_PROOFS = "wrong passwords or codes"


def current_session(request: Request) -> UserSession:
    """The session of the signed-in user (only call behind ``login_required``)."""
    current = signed_in(request)
    assert current is not None, "behind login_required there is always a session"
    return current.session


def member_workspace(request: Request, slug: str) -> Workspace | None:
    """The workspace with this slug if the signed-in user belongs to it (the guard loaded them), else None."""
    for workspace, _role in getattr(request.state, "switcher_workspaces", []):
        if workspace.slug == slug:
            return workspace  # type: ignore[no-any-return]
    return None
