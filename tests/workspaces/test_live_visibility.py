"""What the live feed shows each role: no more than that role's pages show (issue 8, defect 5).

A viewer cannot open the pending invitations, other people's API keys, the SSO settings or the audit log, so
the activity feed must not tell them about those either: not on the open stream, not in a replay, not in
the dashboard's first render.
"""

from __future__ import annotations

import asyncio
import re
import secrets
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from app.apikeys.service import Actor, create_key
from app.audit.actor import Actor as AuditActor
from app.audit.catalogue import CATALOGUE
from app.audit.service import record
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.live.bus import AUTHZ_EVENTS, EventBus, EventType, Topic
from app.members.invitations import invite
from app.tenants.permissions import Role
from tests.conftest import Services
from tests.helpers import Team, audit, changes, person, workspace_with
from tests.live.sse_client import SSEReader
from tests.servers import web_server
from tests.workspaces.test_live import cookie_for

# What a viewer's pages hide, as the audit log records it (the details are what the feed used to spell out).
HIDDEN_FROM_VIEWERS: dict[str, dict[str, Any]] = {
    "member.invited": {"email": "secret-hire@example.com", "role": "admin", "invitation_id": "1"},
    "apikey.created": {"name": "prod-deploy-key", "kind": "service", "scopes": "admin"},
    "sso.configured": {"changes": {"issuer": {"from": None, "to": "https://idp.example.com"}}},
    "mail.delivered": {"email": "secret-hire@example.com", "subject": "Reset your password", "kind": "reset"},
}


@pytest.fixture(scope="module")
def base_url(server_env: dict[str, str]) -> Iterator[str]:
    with web_server(server_env) as base:
        yield base


@pytest.fixture
async def bus(services: Services) -> AsyncIterator[EventBus]:
    """A bus on the same Redis as the web process's (for the events that are not audit entries)."""
    redis = Redis.from_url(services.redis.url)
    yield EventBus(redis)
    await redis.aclose()


async def make_team(db: Database, label: str) -> Team:
    workspace, (owner, admin, member, viewer) = await workspace_with(db, label, Team.ROLES)
    return Team(workspace, owner, admin, member, viewer)


@asynccontextmanager
async def feed(
    base_url: str, db: Database, settings: Settings, user: User, slug: str, topics: str = "activity"
) -> AsyncIterator[SSEReader]:
    """``user``'s live stream of the workspace, as their dashboard opens it."""
    async with (
        httpx.AsyncClient(base_url=base_url, cookies=await cookie_for(db, settings, user), timeout=10) as client,
        client.stream("GET", f"/w/{slug}/events", params={"topics": topics}) as response,
    ):
        assert response.status_code == 200
        reader = SSEReader(response.aiter_bytes())
        first = await reader.next()
        assert first is not None and first.retry is not None
        try:
            yield reader
        finally:
            await reader.aclose()


async def until(reader: SSEReader, marker: str) -> list[str]:
    """The text of every event up to and including the one that contains ``marker``."""
    texts: list[str] = []
    while not texts or marker not in texts[-1]:
        [message] = await reader.events(1)
        texts.append("\n".join(message.data))
    return texts


async def test_a_viewers_feed_does_not_show_what_their_pages_hide(
    base_url: str, db: Database, settings: Settings, bus: EventBus
) -> None:
    team = await make_team(db, "leak")
    slug, workspace_id = team.workspace.slug, team.workspace.id
    async with (
        feed(base_url, db, settings, team.viewer, slug) as viewer,
        feed(base_url, db, settings, team.owner, slug) as owner,
    ):
        for action, details in HIDDEN_FROM_VIEWERS.items():
            await audit(db, settings, workspace_id, action, team.owner, details)
        # Something every member may see, last: when it arrives, everything before it was sent or withheld.
        done = f"done-{secrets.token_hex(3)}"
        await audit(db, settings, workspace_id, "settings.changed", team.owner, {"name": done})

        seen_by_owner = await until(owner, "changed the workspace settings")
        assert len(seen_by_owner) == len(HIDDEN_FROM_VIEWERS) + 1  # the owner's pages show all of it
        seen_by_viewer = await until(viewer, "changed the workspace settings")
        leaked = "\n".join(seen_by_viewer[:-1])
        assert seen_by_viewer[:-1] == [], f"a viewer's feed showed: {leaked}"
        for secret in ("secret-hire@example.com", "prod-deploy-key", "as admin", "sso configured"):
            assert secret not in leaked


async def test_a_demoted_admin_stops_receiving_admin_only_events_at_once(
    base_url: str, db: Database, settings: Settings, bus: EventBus
) -> None:
    team = await make_team(db, "demote")
    slug, workspace_id = team.workspace.slug, team.workspace.id
    async with feed(base_url, db, settings, team.admin, slug) as admin:
        await audit(db, settings, workspace_id, "apikey.created", team.owner, {"name": "before-demotion"})
        [before] = await admin.events(1)
        assert "before-demotion" in "\n".join(before.data)  # an admin's API keys page lists every key

        # The owner makes the admin a viewer through the real members page.
        async with httpx.AsyncClient(base_url=base_url, cookies=await cookie_for(db, settings, team.owner)) as owner:
            page = await owner.get(f"/w/{slug}/members")
            token = page.cookies.get(settings.csrf_cookie) or owner.cookies.get(settings.csrf_cookie) or ""
            changed = await owner.post(
                f"/w/{slug}/members/{team.admin.id}/role", data={"role": "viewer"}, headers={"X-CSRF-Token": token}
            )
            assert changed.status_code in (200, 303), changed.text

        await audit(db, settings, workspace_id, "apikey.created", team.owner, {"name": "after-demotion"})
        await audit(db, settings, workspace_id, "settings.changed", team.owner, {"name": "renamed"})
        texts = await until(admin, "changed the workspace settings")
        assert not any("after-demotion" in text for text in texts), texts
        assert any(
            "role from admin to viewer" in text for text in texts
        )  # the stream stays open: a viewer still sees that


async def test_the_dashboards_first_render_hides_the_same_events(
    base_url: str, db: Database, settings: Settings, bus: EventBus
) -> None:
    team = await make_team(db, "render")
    slug, workspace_id = team.workspace.slug, team.workspace.id
    for action, details in HIDDEN_FROM_VIEWERS.items():
        await audit(db, settings, workspace_id, action, team.owner, details)
    await audit(db, settings, workspace_id, "settings.changed", team.owner, {"name": "renamed"})
    for user, shows_secrets in ((team.owner, True), (team.admin, True), (team.member, False), (team.viewer, False)):
        async with httpx.AsyncClient(base_url=base_url, cookies=await cookie_for(db, settings, user)) as client:
            page = (await client.get(f"/w/{slug}")).text
        assert "changed the workspace settings" in page
        for secret in ("secret-hire@example.com", "prod-deploy-key"):
            assert (secret in page) is shows_secrets, (user.display_name, secret)


# ------------------------------------------------------------------------------------- the whole catalogue

# Where each kind of thing is shown: the page a role must be able to open (and see it on) to get its events.
# This is the test's own table, written from the pages, not from the catalogue it checks.
PAGES = (
    *("dashboard", "settings", "member list", "pending invitations"),
    *("everyone's API keys", "SSO settings", "audit log", "agents", "secrets", "LLM providers", "LLM usage"),
)
ACTION_PAGE = {
    "workspace.created": "dashboard",
    "settings.changed": "settings",
    "workspace.2fa_required_changed": "settings",
    "invitation.accepted": "member list",
    "sso.member_provisioned": "member list",
    "member.role_changed": "member list",
    "member.removed": "member list",
    "member.left": "member list",
    "ownership.transferred": "member list",
    "member.invited": "pending invitations",
    "invitation.revoked": "pending invitations",
    "invitation.resent": "pending invitations",
    "apikey.created": "everyone's API keys",
    "apikey.revoked": "everyone's API keys",
    "sso.configured": "SSO settings",
    "sso.tested": "SSO settings",
    "sso.enforced_changed": "SSO settings",
    "sso.domain_added": "SSO settings",
    "sso.domain_removed": "SSO settings",
    "sso.domain_verified": "SSO settings",
    "sso.domain_verify_failed": "SSO settings",
    "sso.domain_taken": "SSO settings",
    "mail.delivered": "audit log",
    "sso.login": "audit log",
    "sso.login_failed": "audit log",
    "sso.identity_linked": "audit log",
    "sso.identity_unlinked": "audit log",
    "sso.password_login_blocked": "audit log",
    "auth.*": "audit log",
    "account.email_changed": "audit log",  # account events (while they are still in workspace logs at all: defect 4)
    "agent.*": "agents",
    "secret.*": "secrets",  # names and masked previews: every member sees the secrets page
    "pipeline.*": "dashboard",  # every member sees the workspace's pipelines (workspace.view)
    "run.*": "dashboard",  # and their runs (workspace.view)
    "llm.provider_*": "LLM providers",  # labels and masked key previews: every member sees the providers page
    "llm.model_*": "LLM providers",
    "llm.budget_*": "LLM usage",  # spend and the budget: those who see the usage pages
}
# Runs, steps, agents, sessions...: "see everything in the workspace" (the dashboard); membership control
# events tell what the member list then shows.
TYPE_PAGE = {
    EventType.MEMBER_ADDED: "member list",
    EventType.MEMBER_REMOVED: "member list",
    EventType.MEMBER_ROLE_CHANGED: "member list",
    EventType.LLM_CALL: "LLM usage",  # spend per call: those who see the usage pages
    EventType.LLM_BUDGET_WARNING: "LLM usage",
}


def page_of_action(action: str) -> str:
    page = ACTION_PAGE.get(action) or next(
        (page for pattern, page in ACTION_PAGE.items() if pattern.endswith("*") and action.startswith(pattern[:-1])),
        None,
    )
    assert page is not None, f"which page shows {action!r}? add it to ACTION_PAGE in this test"
    return page


async def shows(client: httpx.AsyncClient, path: str, text: str = "") -> bool:
    """The page opens for this client, and shows ``text``."""
    response = await client.get(path)
    return response.status_code == 200 and text in response.text


async def pages_each_role_sees(base_url: str, db: Database, settings: Settings, team: Team) -> dict[str, set[str]]:
    """Open the pages as each role, with something on them to see: a pending invitation, the owner's key."""
    slug, workspace_id = team.workspace.slug, team.workspace.id
    invitee = f"invitee-{secrets.token_hex(3)}@example.com"
    key_name = f"owner-key-{secrets.token_hex(3)}"
    async with changes(db, settings) as session:
        owner = person(team.owner)
        await invite(session, settings, workspace_id=workspace_id, actor=owner, addresses=[invitee], role="member")
        actor = Actor(user_id=team.owner.id, role=Role.OWNER)
        await create_key(
            session, workspace_id=workspace_id, actor=actor, name=key_name, kind="personal", scope="read",
            expires_at=None,
        )  # fmt: skip
    seen: dict[str, set[str]] = {}
    for role in ("owner", *Team.ROLES):
        async with httpx.AsyncClient(
            base_url=base_url, cookies=await cookie_for(db, settings, team.user(role)), timeout=10
        ) as client:
            members = f"/w/{slug}/members"
            found = {
                "dashboard": await shows(client, f"/w/{slug}"),
                "settings": await shows(client, f"/w/{slug}/settings", team.workspace.name),
                "member list": await shows(client, members, team.admin.email),
                "pending invitations": await shows(client, members, invitee),
                "everyone's API keys": await shows(client, f"/w/{slug}/api-keys", key_name),
                "SSO settings": await shows(client, f"/w/{slug}/settings/sso"),
                "audit log": await shows(client, f"/w/{slug}/audit"),
                "agents": await shows(client, f"/w/{slug}/agents"),
                "secrets": await shows(client, f"/w/{slug}/secrets"),
                "LLM providers": await shows(client, f"/w/{slug}/llm"),
                "LLM usage": await shows(client, f"/w/{slug}/usage"),
            }
        assert set(found) == set(PAGES)
        seen[role] = {page for page, visible in found.items() if visible}
    return seen


def rechecks(kind: str) -> bool:
    """Whether publishing this kind makes open streams re-check their viewer (a membership change)."""
    control = CATALOGUE[kind].control if kind in CATALOGUE else None
    return control in AUTHZ_EVENTS if control else kind in {event_type.value for event_type in AUTHZ_EVENTS}


MARKER = re.compile(r"mark-(\d+)-")


async def received_markers(reader: SSEReader, end: str) -> set[int]:
    return {int(found) for text in await until(reader, end) for found in MARKER.findall(text)}


async def test_each_role_receives_exactly_what_its_pages_show(
    base_url: str, db: Database, settings: Settings, bus: EventBus
) -> None:
    """Generated from the catalogue: every audit action and every other event type, to all four roles."""
    team = await make_team(db, "matrix")
    slug, workspace_id = team.workspace.slug, team.workspace.id
    seen = await pages_each_role_sees(base_url, db, settings, team)
    assert seen["viewer"] >= {"dashboard", "settings", "member list"}  # sanity: the oracle can see things
    assert "pending invitations" in seen["admin"]

    # Every kind of event, each with a marker, and the page that shows what it tells.
    kinds: list[tuple[str, str]] = [(action, page_of_action(action)) for action in CATALOGUE]
    kinds += [
        (event_type.value, TYPE_PAGE.get(event_type, "dashboard"))
        for event_type in EventType
        if event_type != EventType.ACTIVITY
    ]
    # Those that make open streams re-check their viewer go last: the rest prove the filter the stream opened with.
    kinds.sort(key=lambda kind: rechecks(kind[0]))
    run = Topic.run("matrix")
    topics = f"activity,control,{run.name}"
    async with (
        feed(base_url, db, settings, team.owner, slug, topics) as owner,
        feed(base_url, db, settings, team.admin, slug, topics) as admin,
        feed(base_url, db, settings, team.member, slug, topics) as member,
        feed(base_url, db, settings, team.viewer, slug, topics) as viewer,
    ):
        for index, (kind, _page) in enumerate(kinds):
            marker = f"mark-{index}-"
            if kind in CATALOGUE:
                # Recorded and relayed as any change's entry, with the marker where the sentence shows it.
                details = {"email": marker, "name": marker, "subject": marker, "domain": marker, "error": marker}
                details |= {"budget": marker}
                details |= {"role": "viewer", "to": "viewer"}
                async with changes(db, settings) as session:
                    record(session, workspace_id, kind, AuditActor.system(marker), details)
            else:
                event_type = EventType(kind)
                topic = Topic.control() if event_type in AUTHZ_EVENTS or event_type in TYPE_PAGE else run
                await bus.publish(workspace_id, topic, event_type, {"marker": marker})
        # Ids of different streams order only across milliseconds: the end marker comes a millisecond later.
        await asyncio.sleep(0.005)
        end = f"end-{secrets.token_hex(3)}"
        async with changes(db, settings) as session:
            record(session, workspace_id, "settings.changed", AuditActor.system(end), {})

        streams = {"owner": owner, "admin": admin, "member": member, "viewer": viewer}
        problems = []
        for role, reader in streams.items():
            got = await received_markers(reader, end)
            expected = {index for index, (_kind, page) in enumerate(kinds) if page in seen[role]}
            problems += [f"{role} received {kinds[i][0]} (shown on {kinds[i][1]})" for i in sorted(got - expected)]
            problems += [f"{role} missed {kinds[i][0]} (shown on {kinds[i][1]})" for i in sorted(expected - got)]
        assert not problems, "\n".join(problems)
