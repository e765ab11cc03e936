"""What an open live stream asks before each event: is its viewer still allowed to see this workspace?"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy import select
from starlette.requests import Request

from app.auth.middleware import signed_in
from app.auth.models import UserSession
from app.sso.enforcement import needs_step_up
from app.tenants.context import WorkspaceContext
from app.tenants.models import Membership
from app.tenants.permissions import permissions_of
from app.web.state import db_of

ViewerCheck = Callable[[], Awaitable[bool | frozenset[str]]]


def still_allowed(request: Request, context: WorkspaceContext) -> ViewerCheck:
    """For ``app.live.sse.event_stream``: still signed in (the session not revoked), still a member (not
    removed), and not now asked for the workspace's single sign-on (required since the stream opened, or the
    identity unlinked)? Then what their role holds now; else False, and the stream ends."""
    current = signed_in(request)
    assert current is not None  # behind workspace_required
    db = db_of(request)
    workspace_id, user_id, session_id = context.workspace.id, context.user.id, current.session.id

    async def check() -> bool | frozenset[str]:
        async with db.public_session() as session:
            role = await session.scalar(
                select(Membership.role).where(Membership.workspace_id == workspace_id, Membership.user_id == user_id)
            )
            live = await session.scalar(select(UserSession.id).where(UserSession.id == session_id))
            if role is None or live is None:
                return False
            if await needs_step_up(session, workspace_id=workspace_id, role=role, session_id=session_id):
                return False
        return permissions_of(role)

    return check
