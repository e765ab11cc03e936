"""Model objects built from Core rows are what a closed session leaves behind: detached, loaded, unmodified."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select
from sqlalchemy.orm.exc import DetachedInstanceError

from app.auth.models import User
from app.db import Database
from app.db.rows import detached, shape_of
from app.tenants.models import Membership, Workspace
from tests.helpers import make_user, make_workspace


async def test_a_row_becomes_the_object_the_orm_would_have_loaded(db: Database) -> None:
    owner = await make_user(db, "rows")
    workspace = await make_workspace(db, owner, "rows")
    users, workspaces = shape_of(User), shape_of(Workspace)
    assert "db_password_enc" not in workspaces.keys  # deferred columns are left out, as the ORM does
    async with db.public_session() as session:
        row = (
            await session.execute(
                select(*users.columns, *workspaces.columns)
                .join_from(User, Membership, Membership.user_id == User.id)
                .join(Workspace, Workspace.id == Membership.workspace_id)
                .where(User.id == owner.id, Workspace.id == workspace.id)
            )
        ).one()
    user = detached(users, row)
    found = detached(workspaces, row, len(users))
    async with db.public_session() as session:
        loaded = await session.get(User, owner.id)
        assert loaded is not None
        assert {key: getattr(user, key) for key in users.keys} == {key: getattr(loaded, key) for key in users.keys}
    state = inspect(user)
    assert state.detached and state.identity == (owner.id,) and not state.modified
    assert (found.id, found.slug, found.name) == (workspace.id, workspace.slug, workspace.name)
    with pytest.raises(DetachedInstanceError):
        _ = found.db_password_enc  # unloaded on a detached object: refused, never a silent query
    # A change goes through a fresh copy in a unit of work, as with any detached object.
    async with db.public_session() as session:
        merged = await session.merge(user)
        merged.display_name = "Renamed"
    async with db.public_session() as session:
        again = await session.get(User, owner.id)
        assert again is not None and again.display_name == "Renamed"
