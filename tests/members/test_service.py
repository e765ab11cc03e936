"""Membership rules at the service level: every refused operation says why and changes nothing."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select, update

from app.auth.models import User
from app.auth.sessions import now
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.members import invitations, service
from app.members.invitations import split_addresses
from app.members.service import MemberError
from app.security.tokens import token_hash
from app.tenants.models import Invitation, Membership, Workspace
from tests import helpers
from tests.helpers import count, make_user, make_workspace, role_of, workspace_with
from tests.helpers import person as as_actor


@dataclass
class Team(helpers.Team):
    outsider_workspace: Workspace
    outsider: User


@pytest.fixture
async def team(db: Database) -> Team:
    workspace, (owner, admin, member, viewer) = await workspace_with(db, "svc", Team.ROLES)
    outsider = await make_user(db, "outsider")
    other = await make_workspace(db, outsider, "other")
    return Team(workspace, owner, admin, member, viewer, other, outsider)


async def memberships(db: Database) -> list[tuple[str, uuid.UUID, str]]:
    async with db.public_session() as session:
        rows = await session.execute(select(Membership.workspace_id, Membership.user_id, Membership.role))
        return sorted((w, u, r) for w, u, r in rows)


async def refused(db: Database, call: Callable[[Any], Awaitable[object]], message: str) -> None:
    """Run ``call`` in a unit of work, expect MemberError mentioning ``message``, and check nothing changed."""
    before = (await memberships(db), await count(db, Invitation), await count(db, OutboxMessage))
    async with db.public_session() as session:
        invitations_before = list(await session.execute(select(Invitation.id, Invitation.revoked_at)))
    with pytest.raises(MemberError, match=message):
        async with db.public_session() as session:
            await call(session)
    assert (await memberships(db), await count(db, Invitation), await count(db, OutboxMessage)) == before
    async with db.public_session() as session:
        assert list(await session.execute(select(Invitation.id, Invitation.revoked_at))) == invitations_before


# --- invitations ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("addresses", "role", "message"),
    [
        ("", "member", "at least one e-mail"),
        (" , \n ; ", "member", "at least one e-mail"),
        (",".join(f"p{i}@example.com" for i in range(21)), "member", "at most 20"),
        ("grace@example.com, not-an-address", "member", "Not a valid e-mail address: not-an-address"),
        ("a" * 330 + "@example.com", "member", "Not a valid e-mail address"),
        ("grace@example.com", "superuser", "Choose a role: admin, member, viewer"),
        ("grace@example.com", "", "Choose a role"),
        ("grace@example.com", "owner", "one owner per workspace"),
    ],
)
async def test_bad_invitations_are_refused(
    db: Database, settings: Settings, team: Team, addresses: str, role: str, message: str
) -> None:
    await refused(
        db,
        lambda s: invitations.invite(
            s,
            settings,
            workspace_id=team.workspace.id,
            actor=as_actor(team.admin),
            addresses=split_addresses(addresses),
            role=role,
        ),
        message,
    )


async def test_inviting_a_member_again_is_refused(db: Database, settings: Settings, team: Team) -> None:
    addresses = f"new@example.com, {team.member.email.upper()}"
    await refused(
        db,
        lambda s: invitations.invite(
            s,
            settings,
            workspace_id=team.workspace.id,
            actor=as_actor(team.owner),
            addresses=split_addresses(addresses),
            role="member",
        ),
        f"Already a member: {team.member.email}",
    )


@pytest.mark.parametrize("who", ["member", "viewer"])
async def test_only_owners_and_admins_invite(db: Database, settings: Settings, team: Team, who: str) -> None:
    actor = getattr(team, who)
    await refused(
        db,
        lambda s: invitations.invite(
            s,
            settings,
            workspace_id=team.workspace.id,
            actor=as_actor(actor),
            addresses=["x@example.com"],
            role="viewer",
        ),
        "does not allow",
    )


async def test_an_outsider_cannot_invite(db: Database, settings: Settings, team: Team) -> None:
    await refused(
        db,
        lambda s: invitations.invite(
            s,
            settings,
            workspace_id=team.workspace.id,
            actor=as_actor(team.outsider),
            addresses=["x@example.com"],
            role="member",
        ),
        "no longer a member",
    )


async def _invite(db: Database, settings: Settings, team: Team, email: str, role: str = "member") -> str:
    """Invite ``email`` and return the token from the mailed link."""
    async with db.public_session() as session:
        [invitation] = await invitations.invite(
            session,
            settings,
            workspace_id=team.workspace.id,
            actor=as_actor(team.admin),
            addresses=split_addresses(email),
            role=role,
        )
        mail = await session.scalar(
            select(OutboxMessage).where(OutboxMessage.to_address == email).order_by(OutboxMessage.id.desc())
        )
    assert mail is not None and team.workspace.name in mail.body_text
    # The mailed link carries ?m= (its proof of the mailbox) after the token.
    token = mail.body_text.split("/invite/")[1].split()[0].split("?")[0]
    assert invitation.token_hash == token_hash(token), "only the hash is stored"
    assert token not in (invitation.token_hash, invitation.email)
    return token


async def test_invitation_accept_and_replay(db: Database, settings: Settings, team: Team) -> None:
    newcomer = await make_user(db, "newcomer")
    token = await _invite(db, settings, team, newcomer.email, "viewer")
    async with db.public_session() as session:
        view, membership, created = await invitations.accept(
            session, token=token, user=newcomer, actor=as_actor(newcomer)
        )
    assert created and membership.role == "viewer" and view.workspace.id == team.workspace.id
    assert await role_of(db, team.workspace.id, newcomer.id) == "viewer"
    await refused(
        db, lambda s: invitations.accept(s, token=token, user=newcomer, actor=as_actor(newcomer)), "already used"
    )


async def test_accepting_needs_the_invited_address(db: Database, settings: Settings, team: Team) -> None:
    invited = await make_user(db, "invited")
    token = await _invite(db, settings, team, invited.email)
    intruder = await make_user(db, "intruder")
    await refused(
        db,
        lambda s: invitations.accept(s, token=token, user=intruder, actor=as_actor(intruder)),
        f"This invitation is for {invited.email}",
    )
    # The invitation still works for the right person, whatever the case of the address.
    invited.email = invited.email.upper()
    async with db.public_session() as session:
        _, membership, _ = await invitations.accept(session, token=token, user=invited, actor=as_actor(invited))
    assert membership.role == "member"


async def test_expired_revoked_and_unknown_invitations(db: Database, settings: Settings, team: Team) -> None:
    person = await make_user(db, "person")
    expired = await _invite(db, settings, team, person.email)
    async with db.public_session() as session:
        await session.execute(
            update(Invitation)
            .where(Invitation.token_hash == token_hash(expired))
            .values(expires_at=now() - timedelta(seconds=1))
        )
    await refused(db, lambda s: invitations.accept(s, token=expired, user=person, actor=as_actor(person)), "expired")

    revoked = await _invite(db, settings, team, person.email)
    async with db.public_session() as session:
        invitation = await session.scalar(select(Invitation).where(Invitation.token_hash == token_hash(revoked)))
        assert invitation is not None
        await invitations.revoke_invitation(
            session, workspace_id=team.workspace.id, actor=as_actor(team.owner), invitation_id=str(invitation.id)
        )
    await refused(db, lambda s: invitations.accept(s, token=revoked, user=person, actor=as_actor(person)), "withdrawn")
    await refused(db, lambda s: invitations.accept(s, token="x" * 43, user=person, actor=as_actor(person)), "not valid")
    await refused(
        db, lambda s: invitations.accept(s, token="../../etc", user=person, actor=as_actor(person)), "not valid"
    )
    assert await role_of(db, team.workspace.id, person.id) is None


async def test_a_new_invitation_replaces_the_pending_one(db: Database, settings: Settings, team: Team) -> None:
    person = await make_user(db, "twice")
    first = await _invite(db, settings, team, person.email)
    second = await _invite(db, settings, team, person.email, "admin")
    await refused(db, lambda s: invitations.accept(s, token=first, user=person, actor=as_actor(person)), "withdrawn")
    async with db.public_session() as session:
        _, membership, _ = await invitations.accept(session, token=second, user=person, actor=as_actor(person))
    assert membership.role == "admin"


async def test_revoking_is_scoped_to_the_workspace(db: Database, settings: Settings, team: Team) -> None:
    async with db.public_session() as session:
        [foreign] = await invitations.invite(
            session,
            settings,
            workspace_id=team.outsider_workspace.id,
            actor=as_actor(team.outsider),
            addresses=["someone@example.com"],
            role="member",
        )
    for invitation_id in (str(foreign.id), "not-a-uuid"):
        await refused(
            db,
            lambda s, i=invitation_id: invitations.revoke_invitation(
                s, workspace_id=team.workspace.id, actor=as_actor(team.admin), invitation_id=i
            ),
            "does not exist",
        )


# --- roles, removal, leaving, ownership ----------------------------------------------------------------------


async def test_change_role_refusals(db: Database, team: Team) -> None:
    ws = team.workspace.id

    def change(actor: User, target: object, role: str) -> Callable[[Any], Awaitable[object]]:
        return lambda s: service.change_role(s, workspace_id=ws, actor=as_actor(actor), target_id=target, role=role)  # type: ignore[arg-type]

    await refused(db, change(team.admin, team.outsider.id, "viewer"), "not a member of this workspace")
    await refused(db, change(team.admin, "not-a-uuid", "viewer"), "not a member of this workspace")
    await refused(db, change(team.admin, team.owner.id, "viewer"), "Only the owner can change the owner's role")
    await refused(db, change(team.owner, team.owner.id, "admin"), "needs its owner")
    await refused(db, change(team.admin, team.admin.id, "viewer"), "your own role")
    await refused(db, change(team.admin, team.member.id, "owner"), "one owner per workspace")
    await refused(db, change(team.admin, team.member.id, "boss"), "Choose a role")
    await refused(db, change(team.admin, team.member.id, "member"), "already are member")
    await refused(db, change(team.member, team.viewer.id, "member"), "does not allow")
    await refused(db, change(team.viewer, team.member.id, "viewer"), "does not allow")
    await refused(db, change(team.outsider, team.member.id, "viewer"), "no longer a member")


async def test_change_role(db: Database, team: Team) -> None:
    async with db.public_session() as session:
        membership, previous = await service.change_role(
            session, workspace_id=team.workspace.id, actor=as_actor(team.admin), target_id=team.viewer.id, role="Member"
        )
    assert (previous, membership.role) == ("viewer", "member")
    assert await role_of(db, team.workspace.id, team.viewer.id) == "member"


async def test_remove_refusals_and_removal(db: Database, team: Team) -> None:
    ws = team.workspace.id

    def remove(actor: User, target: object) -> Callable[[Any], Awaitable[object]]:
        return lambda s: service.remove_member(s, workspace_id=ws, actor=as_actor(actor), target_id=target)  # type: ignore[arg-type]

    await refused(db, remove(team.admin, team.outsider.id), "not a member of this workspace")
    await refused(db, remove(team.admin, team.owner.id), "owner cannot be removed")
    await refused(db, remove(team.admin, team.admin.id), "Leave workspace")
    await refused(db, remove(team.member, team.viewer.id), "does not allow")
    async with db.public_session() as session:
        await service.remove_member(session, workspace_id=ws, actor=as_actor(team.admin), target_id=team.viewer.id)
    assert await role_of(db, ws, team.viewer.id) is None


async def test_owner_cannot_leave_without_transferring(db: Database, team: Team) -> None:
    ws = team.workspace.id
    await refused(db, lambda s: service.leave(s, workspace_id=ws, actor=as_actor(team.owner)), "Transfer ownership")
    await refused(db, lambda s: service.leave(s, workspace_id=ws, actor=as_actor(team.outsider)), "no longer a member")
    async with db.public_session() as session:
        await service.leave(session, workspace_id=ws, actor=as_actor(team.member))
    assert await role_of(db, ws, team.member.id) is None


async def test_transfer_ownership(db: Database, team: Team) -> None:
    ws = team.workspace.id

    def transfer(actor: User, target: object) -> Callable[[Any], Awaitable[object]]:
        return lambda s: service.transfer_ownership(s, workspace_id=ws, actor=as_actor(actor), target_id=target)  # type: ignore[arg-type]

    await refused(db, transfer(team.admin, team.admin.id), "does not allow")
    await refused(db, transfer(team.owner, team.outsider.id), "not a member of this workspace")
    await refused(db, transfer(team.owner, team.owner.id), "already own")
    async with db.public_session() as session:
        await service.transfer_ownership(session, workspace_id=ws, actor=as_actor(team.owner), target_id=team.member.id)
    assert await role_of(db, ws, team.member.id) == "owner"
    assert await role_of(db, ws, team.owner.id) == "admin"
    async with db.public_session() as session:
        owners = await session.scalars(
            select(Membership.user_id).where(Membership.workspace_id == ws, Membership.role == "owner")
        )
        assert list(owners) == [team.member.id]
    # The former owner, now an admin, may leave.
    async with db.public_session() as session:
        await service.leave(session, workspace_id=ws, actor=as_actor(team.owner))
