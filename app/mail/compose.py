"""Turning an outbox row into an e-mail, and handing it to an SMTP server.

Every header is built by the standard library's structured header classes (``email.headerregistry.Address``
under ``email.policy.SMTP``), never by pasting strings together: a value that could start a new header (CR, LF)
or is not a valid address raises ``ValueError`` here, and the outbox counts that as a failed attempt of that
one message.
"""

from __future__ import annotations

import smtplib
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import SMTP

from app.config import Settings

SMTP_TIMEOUT_SECONDS = 20


def sender(mail_from: str) -> Address:
    """``Marid <no-reply@example.com>`` (the configured From) as an Address; ValueError if it is not one."""
    header = SMTP.header_factory("From", mail_from)
    addresses: tuple[Address, ...] = getattr(header, "addresses", ())
    if header.defects or len(addresses) != 1:
        raise ValueError(f"MARID_MAIL_FROM is not one address like “Marid <no-reply@example.com>”: {mail_from!r}")
    return addresses[0]


def compose(settings: Settings, *, to: str, subject: str, body: str, html: str | None = None) -> EmailMessage:
    """The message to send; raises ValueError (or a subclass) when a header cannot be built safely.

    With ``html``, a ``multipart/alternative``: the text part first, the HTML part last (what clients prefer).
    """
    message = EmailMessage(policy=SMTP)
    message["From"] = sender(settings.mail_from)
    message["To"] = Address(addr_spec=to)
    message["Subject"] = subject
    message.set_content(body)
    if html:
        message.add_alternative(html, subtype="html")
    return message


def smtp_send(settings: Settings, message: EmailMessage) -> None:
    """Deliver one message over SMTP (blocking: run it in a thread)."""
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=SMTP_TIMEOUT_SECONDS) as client:
        if settings.smtp_starttls:
            client.starttls()
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        client.send_message(message)
