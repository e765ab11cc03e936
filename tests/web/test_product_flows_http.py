"""Issue 10's guarantees that a plain HTTP client can show: typos are not attempts, a create sent twice is done
once, invitations can be resent and their link copied, an invitee's sign-up needs no second confirmation, sign-in
goes back to the last workspace, signing out says so, and refusals keep the workspace and say whom to ask."""

from __future__ import annotations

import csv
import io
import re
import secrets

from sqlalchemy import func, select
from starlette.testclient import TestClient

from app.apikeys.models import ApiKey
from app.auth.models import User
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.tenants.models import Invitation, Membership, Workspace
from tests.helpers import STRONG_PASSWORD, audit, csrf_of, log_in, make_user, post, role_of, workspace_with


async def _count(db: Database, model: type, *where: object) -> int:
    async with db.public_session() as session:
        return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)  # type: ignore[arg-type]


async def test_refused_sign_ups_and_empty_sign_ins_are_not_attempts(client: TestClient, db: Database) -> None:
    email = f"typo-{secrets.token_hex(3)}@example.com"
    page = client.get("/signup")
    for weak in ("short", "password", "12345678", "also-short", "qwerty"):
        refused = client.post("/signup", data={"csrf_token": csrf_of(page.text), "email": email, "password": weak})
        assert refused.status_code == 422
    # Five refusals later (the limit is 3 an hour per address) the real sign-up still goes through.
    accepted = client.post(
        "/signup", data={"csrf_token": csrf_of(page.text), "email": email, "password": STRONG_PASSWORD}
    )
    assert accepted.status_code == 303, accepted.text
    user = await make_user(db, "typist")
    client.cookies.clear()
    login = client.get("/login")
    for _ in range(15):  # more than the 10 failures an account takes from one client
        empty = client.post("/login", data={"csrf_token": csrf_of(login.text), "email": user.email, "password": ""})
        assert empty.status_code == 422 and "Enter your password" in empty.text
    right = client.post(
        "/login", data={"csrf_token": csrf_of(login.text), "email": user.email, "password": STRONG_PASSWORD}
    )
    assert right.status_code == 303


async def test_a_create_form_sent_twice_creates_once(client: TestClient, db: Database) -> None:
    workspace, (owner,) = await workspace_with(db, f"twice-{secrets.token_hex(3)}", [])
    log_in(client, owner.email)
    members = f"/w/{workspace.slug}/members"
    page = client.get(members).text
    form_id = re.search(r'name="form_id" value="([^"]+)"', page)
    assert form_id
    data = {"csrf_token": csrf_of(page), "form_id": form_id.group(1), "emails": "twice@example.com", "role": "member"}
    first = client.post(members + "/invite", data=data)
    second = client.post(members + "/invite", data=data)
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    where = (Invitation.workspace_id == workspace.id, Invitation.email == "twice@example.com")
    assert await _count(db, Invitation, *where) == 1
    assert await _count(db, OutboxMessage, OutboxMessage.to_address == "twice@example.com") == 1
    # A new workspace, too (each render of the form has its own token).
    new = client.get("/workspaces/new").text
    token = re.search(r'name="form_id" value="([^"]+)"', new)
    assert token
    slug = f"once-{secrets.token_hex(3)}"
    form = {"csrf_token": csrf_of(new), "form_id": token.group(1), "name": "Once", "slug": slug}
    assert client.post("/workspaces/new", data=form).status_code == 303
    assert client.post("/workspaces/new", data=form).status_code == 303
    assert await _count(db, Workspace, Workspace.slug.like(f"{slug}%")) == 1
    # A refused form gives its token back: corrected, it goes through.
    keys = f"/w/{workspace.slug}/api-keys"
    page = client.get(keys).text
    token = re.search(r'name="form_id" value="([^"]+)"', page)
    assert token
    key_form = {"csrf_token": csrf_of(page), "form_id": token.group(1), "kind": "personal", "scope": "read",
                "expires": "30"}  # fmt: skip
    assert client.post(keys, data={**key_form, "name": " "}).status_code == 422
    assert client.post(keys, data={**key_form, "name": "CI"}).status_code == 201
    assert client.post(keys, data={**key_form, "name": "CI"}).status_code == 409
    assert await _count(db, ApiKey, ApiKey.workspace_id == workspace.id) == 1


async def test_resend_and_copy_link_of_a_pending_invitation(client: TestClient, db: Database) -> None:
    workspace, (owner,) = await workspace_with(db, f"resend-{secrets.token_hex(3)}", [])
    log_in(client, owner.email)
    members = f"/w/{workspace.slug}/members"
    post(client, members, members + "/invite", {"emails": "later@example.com", "role": "viewer"})
    page = client.get(members).text
    copied = re.search(r'data-copy-text="([^"]+/invite/[^"]+)"', page)
    assert copied and "?m=" not in copied.group(1), "the copied link never carries the mailbox proof"
    async with db.public_session() as session:
        invitation = await session.scalar(select(Invitation).where(Invitation.email == "later@example.com"))
        assert invitation is not None
    resent = post(client, members, f"/w/{workspace.slug}/invitations/{invitation.id}/resend")
    assert resent.status_code == 303
    assert "sent to later@example.com again" in client.get(members).text
    async with db.public_session() as session:
        bodies = list(
            await session.scalars(
                select(OutboxMessage.body_text).where(OutboxMessage.to_address == "later@example.com")
            )
        )
        html = await session.scalar(
            select(OutboxMessage.body_html).where(OutboxMessage.to_address == "later@example.com")
        )
    assert len(bodies) == 2
    links = [re.search(r"/invite/([A-Za-z0-9_-]+)", body).group(1) for body in bodies]  # type: ignore[union-attr]
    assert links[0] == links[1] and links[0] in copied.group(1), "resending mails the same link"
    assert html and "Join " in html and workspace.name in html


async def test_an_invitee_from_the_mailed_link_signs_up_without_confirming_again(
    client: TestClient, db: Database
) -> None:
    workspace, (owner,) = await workspace_with(db, f"invitee-{secrets.token_hex(3)}", [])
    email = f"newbie-{secrets.token_hex(3)}@example.com"
    log_in(client, owner.email)
    members = f"/w/{workspace.slug}/members"
    post(client, members, members + "/invite", {"emails": email, "role": "member"})
    async with db.public_session() as session:
        body = await session.scalar(select(OutboxMessage.body_text).where(OutboxMessage.to_address == email))
    link = re.search(r"/invite/\S+", body or "")
    assert link and "?m=" in link.group(0)
    client.cookies.clear()
    invitation = client.get(link.group(0))
    assert "Create account to accept" in invitation.text and "Sign in to accept" not in invitation.text
    signup_url = re.search(r'id="create-to-accept" href="([^"]+)"', invitation.text)
    assert signup_url
    signup = client.get(signup_url.group(1).replace("&amp;", "&"))
    assert f'value="{email}"' in signup.text, "the address is filled in"
    fields = dict(re.findall(r'<input type="hidden" name="(invitation|m|next)" value="([^"]*)"', signup.text))
    data = {"csrf_token": csrf_of(signup.text), **fields, "email": email, "password": STRONG_PASSWORD,
            "display_name": "Newbie"}  # fmt: skip
    joined = client.post("/signup", data=data)
    assert joined.status_code == 303 and joined.headers["location"] == f"/w/{workspace.slug}", joined.text
    async with db.public_session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None and user.email_verified_at is not None
    assert await role_of(db, workspace.id, user.id) == "member"
    assert await _count(db, OutboxMessage, OutboxMessage.to_address == email, OutboxMessage.kind == "verify-email") == 0
    assert "Welcome to" in client.get(f"/w/{workspace.slug}").text


async def test_a_copied_link_still_needs_the_confirmation_mail(client: TestClient, db: Database) -> None:
    workspace, (owner,) = await workspace_with(db, f"copied-{secrets.token_hex(3)}", [])
    email = f"shared-{secrets.token_hex(3)}@example.com"
    log_in(client, owner.email)
    members = f"/w/{workspace.slug}/members"
    post(client, members, members + "/invite", {"emails": email, "role": "member"})
    copied = re.search(r'data-copy-text="[^"]*(/invite/[^"]+)"', client.get(members).text)
    assert copied
    client.cookies.clear()
    page = client.get(copied.group(1))
    signup_url = re.search(r'id="create-to-accept" href="([^"]+)"', page.text)
    assert signup_url and "invitation=" not in signup_url.group(1)
    # Even with the token typed in by hand, no proof means the usual confirmation.
    token = copied.group(1).removeprefix("/invite/")
    signup = client.get(f"/signup?invitation={token}&m=forged")
    data = {"csrf_token": csrf_of(signup.text), "invitation": token, "m": "forged", "email": email,
            "password": STRONG_PASSWORD}  # fmt: skip
    answer = client.post("/signup", data=data)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/verify-email?sent=1")
    async with db.public_session() as session:
        user = await session.scalar(select(User).where(User.email == email))
        assert user is not None and user.email_verified_at is None
    assert await _count(db, Membership, Membership.user_id == user.id) == 0


async def test_signing_in_goes_back_to_the_last_workspace_and_signing_out_says_so(
    client: TestClient, db: Database
) -> None:
    first, (owner,) = await workspace_with(db, f"first-{secrets.token_hex(3)}", [])
    second, _ = await workspace_with(db, f"second-{secrets.token_hex(3)}", [])
    async with db.public_session() as session:
        session.add(Membership(workspace_id=second.id, user_id=owner.id, role="viewer"))
    log_in(client, owner.email)
    assert client.get(f"/w/{second.slug}").status_code == 200
    out = post(client, "/workspaces", "/logout")
    assert out.headers["location"] == "/login"
    assert "You are signed out." in client.get("/login").text
    again = client.post("/login", data={"csrf_token": csrf_of(client.get("/login").text), "email": owner.email,
                                        "password": STRONG_PASSWORD})  # fmt: skip
    assert again.headers["location"] == f"/w/{second.slug}"
    assert client.get("/").headers["location"] == f"/w/{second.slug}"
    assert first.slug != second.slug


async def test_a_refusal_keeps_the_workspace_and_says_whom_to_ask(client: TestClient, db: Database) -> None:
    workspace, (owner, viewer) = await workspace_with(db, f"ask-{secrets.token_hex(3)}", ["viewer"])
    log_in(client, viewer.email)
    refused = client.get(f"/w/{workspace.slug}/audit")
    assert refused.status_code == 403
    assert 'class="sidebar"' in refused.text, "the workspace layout stays"
    assert owner.display_name in refused.text and "(owner)" in refused.text
    assert "Configure single sign-on" not in client.get(f"/w/{workspace.slug}/settings").text
    missing = client.get("/no/such/page")
    assert missing.status_code == 404 and "Not Found" not in missing.text
    assert await make_user(db, "unused") is not None


async def test_the_audit_log_exports_as_csv_with_its_filters(
    client: TestClient, db: Database, settings: Settings
) -> None:
    workspace, (owner,) = await workspace_with(db, f"csv-{secrets.token_hex(3)}", [])
    await audit(db, settings, workspace.id, "member.invited", owner, {"email": "=cmd@example.com", "role": "member"})
    await audit(db, settings, workspace.id, "settings.changed", owner, {"name": {"from": "A", "to": "B"}})
    log_in(client, owner.email)
    page = client.get(f"/w/{workspace.slug}/audit?action=member.invited").text
    assert f'href="/w/{workspace.slug}/audit.csv?action=member.invited"' in page
    export = client.get(f"/w/{workspace.slug}/audit.csv?action=member.invited")
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert "attachment" in export.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(export.content.decode("utf-8-sig"))))
    assert rows[0][:5] == ["id", "time_utc", "actor", "actor_id", "action"]
    assert [row[4] for row in rows[1:]] == ["member.invited"], "the filter applies"
    assert "invited =cmd@example.com" in rows[1][6]
    # A cell that would start a formula in a spreadsheet starts with an apostrophe.
    assert all(not cell.startswith(("=", "+", "@")) for row in rows for cell in row)


async def test_the_profile_sets_the_name_the_time_zone_and_moves_the_address(
    client: TestClient, db: Database, settings: Settings
) -> None:
    workspace, (owner,) = await workspace_with(db, f"profile-{secrets.token_hex(3)}", [])
    log_in(client, owner.email)
    saved = post(client, "/account/profile", "/account/profile", {"display_name": "Ada  L.", "time_zone": "Asia/Tokyo"})
    assert saved.status_code == 303
    page = client.get("/account/profile").text
    assert 'value="Ada L."' in page and "Asia/Tokyo" in page and "Profile saved." in page
    # Times follow the zone: the audit page says so, and shows them there.
    await audit(db, settings, workspace.id, "settings.changed", owner, {"name": {"from": "A", "to": "B"}})
    assert "Asia/Tokyo" in client.get(f"/w/{workspace.slug}/audit").text
    refused = post(client, "/account/profile", "/account/profile", {"display_name": "x", "time_zone": "Mars/Base"})
    assert refused.status_code == 422 and "Choose a time zone" in refused.text
    new = f"moved-{secrets.token_hex(3)}@example.com"
    asked = post(client, "/account/profile", "/account/profile/email", {"email": new})
    assert asked.status_code == 303
    async with db.public_session() as session:
        body = await session.scalar(select(OutboxMessage.body_text).where(OutboxMessage.to_address == new))
        assert (await session.get(User, owner.id)).email == owner.email  # type: ignore[union-attr]
    link = re.search(r"/account/email/\S+", body or "")
    assert link
    assert client.get(link.group(0)).status_code == 303
    async with db.public_session() as session:
        moved = await session.get(User, owner.id)
        told = await session.scalar(select(OutboxMessage.subject).where(OutboxMessage.to_address == owner.email))
    assert moved is not None and moved.email == new and told == "Your Marid e-mail address was changed"
    assert client.get(link.group(0)).status_code == 400, "a link works once: the account moved"


async def test_a_taken_url_name_is_refused_without_a_contradicting_preview(client: TestClient, db: Database) -> None:
    # Seen in a browser: the refused form said "is taken" in red and, under it, "will live at /w/<that name>".
    workspace, (owner,) = await workspace_with(db, f"taken-{secrets.token_hex(3)}", [])
    log_in(client, owner.email)
    new = client.get("/workspaces/new").text
    token = re.search(r'name="form_id" value="([^"]+)"', new)
    assert token
    form = {"csrf_token": csrf_of(new), "form_id": token.group(1), "name": "Again", "slug": workspace.slug}
    refused = client.post("/workspaces/new", data=form)
    assert refused.status_code == 422 and "is taken" in refused.text
    assert "will live at" not in refused.text
    assert 'id="slug-preview"' in refused.text  # still there for the next keystroke's preview
