"""The domain list on the SSO settings page, over HTTP with a real DNS server: add, the record to publish,
Verify (only with the record there), one verified workspace per domain, remove, and refusals that change
nothing."""

from __future__ import annotations

import re
import uuid

import pytest
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from starlette.testclient import TestClient

from app.config import Settings
from app.db import Database
from app.embedded.util import free_port
from app.main import create_app
from app.sso.dns import record_name, record_value
from app.sso.models import SsoDomain
from app.tenants.models import Workspace
from tests.dns_server import TestDns
from tests.helpers import http_client, log_in, post_form
from tests.sso.helpers import add_member, audit_actions, make_user, make_workspace, unique_domain

pytestmark = pytest.mark.timeout(60)


async def _admin_of(db: Database, label: str = "domains") -> tuple[str, Workspace]:
    owner = await make_user(db, "owner")
    return owner.email, await make_workspace(db, owner, label)


async def _domains(db: Database, workspace: Workspace) -> list[SsoDomain]:
    async with db.public_session() as session:
        rows = await session.scalars(select(SsoDomain).where(SsoDomain.workspace_id == workspace.id))
        return list(rows)


def _add(client: TestClient, workspace: Workspace, domain: str) -> None:
    page = f"/w/{workspace.slug}/settings/sso"
    added = post_form(client, page, page + "/domains", {"domain": domain})
    assert added.status_code == 303, added.text


def _verify(client: TestClient, workspace: Workspace, row: SsoDomain) -> str:
    """Press Verify; the page's message afterwards (its toast)."""
    page = f"/w/{workspace.slug}/settings/sso"
    answer = post_form(client, page, f"{page}/domains/{row.id}/verify")
    assert answer.status_code == 303
    html = client.get(page).text
    toast = re.search(r'<div class="toast (\w+)" data-toast>([^<]*)</div>', html)
    assert toast, html
    return f"{toast.group(1)}: {toast.group(2)}"


async def test_a_domain_is_verified_only_once_its_record_is_published(
    client: TestClient, db: Database, dns: TestDns
) -> None:
    email, workspace = await _admin_of(db)
    log_in(client, email)
    domain = unique_domain()
    _add(client, workspace, f" @{domain.upper()}. ")
    [row] = await _domains(db, workspace)
    assert row.domain == domain and row.verified_at is None and len(row.token) == 32
    html = client.get(f"/w/{workspace.slug}/settings/sso").text
    assert f"_marid-verify.{domain}" in html and f"marid-domain-verification={row.token}" in html
    assert "Pending" in html

    # Nothing published, then a wrong value: not verified, and the page says what it found.
    assert "error: " in (message := _verify(client, workspace, row))
    assert "Found no TXT record" in message
    dns.zone.publish_txt(record_name(domain), "marid-domain-verification=someone-elses-token")
    assert "only marid-domain-verification=someone-elses-token" in _verify(client, workspace, row)
    [row] = await _domains(db, workspace)
    assert row.verified_at is None and row.last_checked_at is not None and row.last_error

    dns.zone.publish_txt(record_name(domain), record_value(row.token))
    assert _verify(client, workspace, row) == f"success: {domain} is verified."
    [row] = await _domains(db, workspace)
    assert row.verified_at is not None and row.last_error is None
    assert dns.zone.queries_for(record_name(domain)) == ["TXT", "TXT", "TXT"]  # over DNS, every time
    actions = [action for action, _ in await audit_actions(db, workspace)]
    assert actions.count("sso.domain_verify_failed") == 2 and actions.count("sso.domain_verified") == 1


async def test_a_verified_domain_belongs_to_one_workspace_at_a_time(
    settings: Settings, db: Database, dns: TestDns
) -> None:
    domain = unique_domain()
    first_email, first = await _admin_of(db, "first")
    second_email, second = await _admin_of(db, "second")
    with http_client(create_app(settings)) as one, http_client(create_app(settings)) as two:
        log_in(one, first_email)
        log_in(two, second_email)
        _add(one, first, domain)
        _add(two, second, domain)  # anyone may list it; only proof counts
        [mine], [theirs] = await _domains(db, first), await _domains(db, second)
        assert mine.token != theirs.token
        dns.zone.publish_txt(record_name(domain), record_value(mine.token))
        assert _verify(one, first, mine).startswith("success")

        # The second workspace publishes its record too: refused while the first one's is still there.
        dns.zone.publish_txt(record_name(domain), record_value(theirs.token))
        assert "its record is still published" in _verify(two, second, theirs)
        # Whoever runs the domain's DNS removes the first record: the domain moves.
        dns.zone.remove_txt(record_name(domain), record_value(mine.token))
        assert _verify(two, second, theirs).startswith("success")
    [mine], [theirs] = await _domains(db, first), await _domains(db, second)
    assert mine.verified_at is None and theirs.verified_at is not None
    assert ("sso.domain_taken", {"domain": domain}) in await audit_actions(db, first)

    # And the database itself refuses two verified rows for one domain, whatever the code does.
    with pytest.raises(IntegrityError):
        async with db.public_session() as session:
            await session.execute(
                update(SsoDomain).where(SsoDomain.id == mine.id).values(verified_at=theirs.verified_at)
            )


async def test_bad_domains_are_refused_and_change_nothing(client: TestClient, db: Database) -> None:
    email, workspace = await _admin_of(db)
    log_in(client, email)
    page = f"/w/{workspace.slug}/settings/sso"
    domain = unique_domain()
    _add(client, workspace, domain)
    for bad, message in [
        ("", "is not a domain name"),
        ("localhost", "is not a domain name"),
        ("not a domain!", "is not a domain name"),
        ("10.0.0.1", "is not a domain name"),
        (domain, "is already on the list"),
    ]:
        refused = post_form(client, page, page + "/domains", {"domain": bad})
        assert refused.status_code == 422, bad
        assert message in refused.text, bad
    assert [row.domain for row in await _domains(db, workspace)] == [domain]


async def test_domains_are_managed_by_owners_and_admins_of_their_own_workspace_only(
    client: TestClient, db: Database
) -> None:
    email, workspace = await _admin_of(db)
    member = await make_user(db, "member")
    await add_member(db, workspace, member, "member")
    log_in(client, email)
    _add(client, workspace, unique_domain())
    [row] = await _domains(db, workspace)
    other_email, other = await _admin_of(db, "other")
    client.cookies.clear()
    log_in(client, other_email)
    own = f"/w/{other.slug}/settings/sso"
    # Another workspace's domain id, through one's own workspace: not found, not changed.
    for action in ("verify", "remove"):
        assert post_form(client, own, f"{own}/domains/{row.id}/{action}").status_code == 404
        assert post_form(client, own, f"{own}/domains/{uuid.uuid4()}/{action}").status_code == 404
        assert post_form(client, own, f"{own}/domains/not-a-uuid/{action}").status_code == 404
    client.cookies.clear()
    log_in(client, member.email)
    csrf = client.cookies.get("marid_csrf") or ""
    for path in ("domains", f"domains/{row.id}/verify", f"domains/{row.id}/remove"):
        answer = client.post(f"/w/{workspace.slug}/settings/sso/{path}", data={"csrf_token": csrf, "domain": "x.test"})
        assert answer.status_code == 403, path
    assert [(r.id, r.verified_at) for r in await _domains(db, workspace)] == [(row.id, None)]


async def test_removing_a_domain_takes_back_what_it_allowed(client: TestClient, db: Database, dns: TestDns) -> None:
    email, workspace = await _admin_of(db)
    log_in(client, email)
    domain = unique_domain()
    _add(client, workspace, domain)
    [row] = await _domains(db, workspace)
    dns.zone.publish_txt(record_name(domain), record_value(row.token))
    _verify(client, workspace, row)
    page = f"/w/{workspace.slug}/settings/sso"
    assert post_form(client, page, f"{page}/domains/{row.id}/remove").status_code == 303
    assert await _domains(db, workspace) == []
    assert ("sso.domain_removed", {"domain": domain, "was_verified": True}) in await audit_actions(db, workspace)


async def test_dns_that_does_not_answer_is_reported_and_verifies_nothing(
    settings: Settings, db: Database, dns: TestDns
) -> None:
    email, workspace = await _admin_of(db)
    domain = unique_domain()
    silent = settings.model_copy(update={"dns_nameservers": f"127.0.0.1:{free_port()}"})
    with http_client(create_app(silent)) as client:
        log_in(client, email)
        _add(client, workspace, domain)
        [row] = await _domains(db, workspace)
        dns.zone.publish_txt(record_name(domain), record_value(row.token))  # on the real server, not asked
        message = _verify(client, workspace, row)
    assert message.startswith("error: ") and "DNS did not answer" in message
    [row] = await _domains(db, workspace)
    assert row.verified_at is None and "DNS did not answer" in (row.last_error or "")


def test_marid_dns_nameservers_is_checked() -> None:
    assert Settings(dns_nameservers="127.0.0.1:5353, [::1]:53 192.0.2.1").dns_nameserver_list == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("192.0.2.1", 53),
    ]
    assert Settings(dns_nameservers="").dns_nameserver_list == []
    for bad in ("dns.example:53", "127.0.0.1:0", "127.0.0.1:99999", "[::1]:x"):
        with pytest.raises(ValueError, match="MARID_DNS_NAMESERVERS"):
            Settings(dns_nameservers=bad)
