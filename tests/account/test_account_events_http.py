"""Account events belong to the person, not to every workspace they are in (issue 8, defect 4).

The attack: an admin of workspace A, whose member also belongs to workspace B, read in A's audit log and live
activity feed where and when that member signed in, failed to, reset their password or changed 2FA, with IP
addresses, whatever workspace they were working in. Now those events go to the member's own security log
(the account security page), and A's log holds only what happened in A.
"""

from __future__ import annotations

import re
import secrets

from sqlalchemy import select
from starlette.testclient import TestClient

from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.mail.models import OutboxMessage
from app.main import create_app
from tests.account.helpers import FIREFOX, NEW_PASSWORD, PASSWORD, csrf_of, post_form, turn_on_2fa
from tests.api.helpers import api_client, session_cookie
from tests.helpers import add_member, log_in, make_user, make_workspace, random_ip


def _browser(settings: Settings, ip: str) -> TestClient:
    return TestClient(create_app(settings), follow_redirects=False, client=(ip, 50000), headers={"user-agent": FIREFOX})


async def test_an_admin_of_one_workspace_cannot_follow_a_members_account_events(
    settings: Settings, db: Database
) -> None:
    tag = secrets.token_hex(3)
    admin = await make_user(db, f"a-admin-{tag}", name="Alex Admin")
    member = await make_user(db, f"member-{tag}", name="Mira Member")
    workspace_a = await make_workspace(db, admin, f"aaa-{tag}")
    b_owner = await make_user(db, f"b-owner-{tag}")
    workspace_b = await make_workspace(db, b_owner, f"bbb-{tag}")
    await add_member(db, workspace_a, member, "member")
    await add_member(db, workspace_b, member, "member")
    member_ip = random_ip()

    with _browser(settings, member_ip) as mira:
        # A wrong password, then the right one; 2FA on, a wrong code, then off again; a password reset.
        assert (
            post_form(mira, "/login", "/login", {"email": member.email, "password": "not it at all"}).status_code == 401
        )
        log_in(mira, member.email)
        assert mira.get(f"/w/{workspace_b.slug}").status_code == 200
        await turn_on_2fa(db, settings, member.id)
        disabled = post_form(mira, "/account/2fa", "/account/2fa/disable", {"password": PASSWORD})
        assert disabled.status_code == 303, disabled.text
        mira.cookies.clear()
        post_form(mira, "/password/forgot", "/password/forgot", {"email": member.email})
        async with db.public_session() as session:
            body = await session.scalar(
                select(OutboxMessage.body_text)
                .where(OutboxMessage.to_address == member.email, OutboxMessage.kind == "password-reset")
                .order_by(OutboxMessage.id.desc())
            )
        assert body is not None
        reset_path = re.search(r"https?://[^/\s]+(/password/reset/\S+)", body)
        assert reset_path
        page = mira.get(reset_path.group(1))
        answer = mira.post(
            reset_path.group(1), data={"csrf_token": csrf_of(page.text), "password": NEW_PASSWORD, "code": ""}
        )
        assert answer.status_code == 303, answer.text
        log_in(mira, member.email, NEW_PASSWORD)

        security = mira.get("/account/security")
        assert security.status_code == 200

    # The admin of A sees none of it: not in the audit log (page, API, database), not in the activity feed.
    with _browser(settings, random_ip()) as alex:
        log_in(alex, admin.email)
        for path in (f"/w/{workspace_a.slug}/audit", f"/w/{workspace_a.slug}"):
            page = alex.get(path)
            assert page.status_code == 200
            assert member_ip not in page.text, path
            assert 'data-action="auth.' not in page.text, path  # audit rows
            # Activity feed items: "Mira Member signed in", "A sign-in as Mira Member failed", ...
            feed = re.findall(r"<li data-feed-item>.*?</li>", page.text, re.S)
            assert not [item for item in feed if "Mira Member" in item], path
    with api_client(settings, await session_cookie(db, settings, admin)) as api:
        events = api.get(f"/api/v1/workspaces/{workspace_a.slug}/audit").json()["data"]
    assert [e["action"] for e in events if e["action"].startswith("auth.")] == []
    assert member_ip not in str(events)
    for workspace in (workspace_a, workspace_b):
        async with db.tenant_session(workspace.id) as session:
            leaked = await session.scalars(select(AuditEvent.action).where(AuditEvent.actor_id == str(member.id)))
            assert [action for action in leaked if action.startswith("auth.")] == []

    # The member sees all of it on their own security page, newest first, in sentences.
    text = security.text
    for sentence in (
        "Signed in",
        "Sign-in failed (wrong password)",
        "Turned off two-factor authentication",
        "Reset your password",
    ):
        assert sentence in text, sentence
    assert member_ip in text
    assert text.index("Reset your password") < text.index("Sign-in failed (wrong password)")
    # The same list in the JSON API, for the member alone.
    with api_client(settings, await session_cookie(db, settings, member)) as api:
        mine = api.get("/api/v1/me/account-events?limit=3")
        assert mine.status_code == 200
        page = mine.json()
        assert [event["action"] for event in page["data"]] == ["auth.login", "auth.password_reset", "auth.2fa_disabled"]
        assert page["data"][0]["ip"] == member_ip and page["next_cursor"]
        older = api.get(f"/api/v1/me/account-events?cursor={page['next_cursor']}").json()["data"]
        assert [event["action"] for event in older][-2:] == ["auth.login", "auth.login_failed"]
