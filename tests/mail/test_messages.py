"""Every kind of mail is written as two parts, text and HTML with one button, and names people as text (issue 10)."""

from __future__ import annotations

from collections.abc import Callable
from email import message_from_bytes
from email.policy import SMTP

import pytest

from app.config import Settings
from app.mail import messages
from app.mail.compose import compose
from app.mail.layout import Mail

LINK = "https://marid.example/x/abc?m=1&n=2"
EVIL = "<b>Eve</b> & “Co”"

# One example per kind (messages.KINDS), with a hostile name wherever a person's or a workspace's name goes.
EXAMPLES: dict[str, Callable[[], Mail]] = {
    "verify-email": lambda: messages.verify_email(LINK, EVIL),
    "already-registered": lambda: messages.already_registered(LINK, LINK + "/reset"),
    "password-reset": lambda: messages.password_reset(LINK, [f"{EVIL} (https://login.example.com)"]),
    "sso-identity-linked": lambda: messages.identity_linked(
        issuer="https://login.example.com", workspace=EVIL, email_at_link="ada@example.com", how="signed in"
    ),
    "sso-identity-unlinked": lambda: messages.identity_unlinked(f"https://login.example.com ({EVIL})"),
    "invitation": lambda: messages.invitation(EVIL, EVIL, "member", LINK, 7),
    "email-change": lambda: messages.email_change(LINK, "new@example.com"),
    "email-changed": lambda: messages.email_changed("old@example.com", "new@example.com"),
}


def test_every_kind_has_an_example() -> None:
    assert set(EXAMPLES) == set(messages.KINDS)


@pytest.mark.parametrize("kind", sorted(messages.KINDS))
def test_each_kind_has_a_text_part_and_an_html_part(kind: str) -> None:
    mail = EXAMPLES[kind]()
    assert mail.subject and "\n" not in mail.subject
    assert mail.text.strip() and "— Marid" in mail.text
    assert mail.html.startswith("<!doctype html>") and "</html>" in mail.html
    # No old boilerplate: every mail says itself why it came.
    assert "someone used this address on Marid" not in mail.text
    if LINK in mail.text:
        # One clear button in the HTML, the same link on a line of its own in the text.
        assert mail.html.count("display:inline-block") == 1
        assert "https://marid.example/x/abc?m=1&amp;n=2" in mail.html
        assert f"\n{LINK}\n" in mail.text
    # Names are text in HTML, never markup.
    assert "<b>Eve</b>" not in mail.html
    if "Eve" in mail.text:
        assert "&lt;b&gt;Eve&lt;/b&gt; &amp;" in mail.html


def test_the_invitation_names_the_workspace_and_the_inviter() -> None:
    mail = messages.invitation("Acme Labs", "Ada Lovelace", "viewer", LINK, 7)
    assert mail.subject == "Ada Lovelace invited you to Acme Labs on Marid"
    assert "Ada Lovelace invited you to the workspace “Acme Labs”" in mail.text
    assert "Join Acme Labs" in mail.html and "viewer" in mail.text
    assert "7 days" in mail.text


def test_a_mail_goes_out_as_multipart_alternative(settings: Settings) -> None:
    mail = messages.invitation("Acme", "Ada", "member", LINK, 7)
    built = compose(settings, to="kay@example.com", subject=mail.subject, body=mail.text, html=mail.html)
    parsed = message_from_bytes(built.as_bytes(policy=SMTP), policy=SMTP)
    assert parsed.get_content_type() == "multipart/alternative"
    types = [part.get_content_type() for part in parsed.iter_parts()]  # type: ignore[attr-defined]
    assert types == ["text/plain", "text/html"]
    # Without an HTML part (mail queued before there was one), plain text as before.
    plain = compose(settings, to="kay@example.com", subject="Hi", body="text")
    assert plain.get_content_type() == "text/plain"
