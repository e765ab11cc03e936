"""The words of every mail Marid sends, each as a text part and an HTML part with one clear button
(``app.mail.layout``). A mail says who it is from (the workspace, the person who invited), what the button does,
how long it works, and why it came.

Names come from people (a workspace's, an inviter's): the layout escapes them in HTML, and
``strip_control_characters`` keeps them out of headers' way in subjects.
"""

from __future__ import annotations

from app.mail.layout import Bullets, Button, Mail, Small, build
from app.security.single_line import strip_control_characters

# Every kind this module writes, as the outbox's ``kind`` column names it (tests walk it).
KINDS = (
    "verify-email",
    "already-registered",
    "password-reset",
    "sso-identity-linked",
    "sso-identity-unlinked",
    "invitation",
    "email-change",
    "email-changed",
)

_NOT_YOU = "If you did not ask for this, you can ignore this message: nothing changes without it."
_ACCOUNT = "You got this message because it is about your Marid account."

ROLE_PHRASES = {
    "owner": "an owner",
    "admin": "an admin: you can manage members, settings and the audit log, and run agents",
    "member": "a member: you can create and run agents, pipelines and swarms, and work the project board",
    "viewer": "a viewer: you can see everything in the workspace without changing it",
}


def verify_email(link: str, name: str = "") -> Mail:
    hello = f"Welcome to Marid, {strip_control_characters(name)}." if name else "Welcome to Marid."
    return build(
        "Confirm your e-mail address",
        hello,
        [
            "Confirm your address to finish creating your account.",
            Button("Confirm my address", link),
            Small("The link works for 48 hours, in the browser you signed up with."),
        ],
        footer="Someone signed up for Marid with this address. If it was not you, ignore this message: no account "
        "is made without it.",
    )


def already_registered(login_link: str, reset_link: str) -> Mail:
    return build(
        "You already have a Marid account",
        "You already have an account",
        [
            "Someone, hopefully you, tried to create a Marid account with this address. It already has one, so "
            "nothing was changed.",
            Button("Sign in", login_link),
            Small(f"Forgot your password? Choose a new one at {reset_link}"),
        ],
        footer="If this was not you, you can ignore this message: your account and its password are unchanged.",
    )


def password_reset(link: str, identities: list[str] | None = None) -> Mail:
    """``identities``: one line per single sign-on identity that can also sign in to the account."""
    blocks: list[str | Button | Bullets | Small] = [
        "Someone asked to reset the password of your Marid account. Choose a new one with this button.",
        Button("Choose a new password", link),
        Small("The link works once, for 30 minutes. Saving a new password signs you out everywhere else."),
    ]
    if identities:
        blocks += [
            "These identity providers can also sign you in to this account (a new password does not change that):",
            Bullets(tuple(identities)),
            Small("Don't recognise one? Unlink it on your account's Security page after signing in."),
        ]
    return build("Reset your Marid password", "Reset your password", blocks, footer=_NOT_YOU)


def identity_linked(*, issuer: str, workspace: str, email_at_link: str, how: str) -> Mail:
    who = f" as {email_at_link}" if email_at_link else ""
    where = f" (single sign-on of the workspace “{strip_control_characters(workspace)}”)" if workspace else ""
    return build(
        "A single sign-on identity was linked to your Marid account",
        "A new way to sign in was added",
        [
            f"The identity provider {issuer}{where} can now sign you in to your Marid account: you signed in "
            f"there{who}.",
            Small(f"How it was linked: {how}."),
            "If this was not you, unlink it on your account's Security page and change your password.",
        ],
        footer=_ACCOUNT,
    )


def identity_unlinked(identity: str) -> Mail:
    return build(
        "A single sign-on identity was unlinked from your Marid account",
        "A way to sign in was removed",
        [
            "This identity provider can no longer sign you in to your Marid account:",
            Bullets((identity,)),
            "If this was not you, change your password and check your sessions.",
        ],
        footer=_ACCOUNT,
    )


def invitation(workspace_name: str, inviter: str, role: str, link: str, days: int) -> Mail:
    # Names are refused with control characters today, but rows from before that rule may still hold some:
    # they must never reach the Subject header.
    workspace_name, inviter = strip_control_characters(workspace_name), strip_control_characters(inviter)
    return build(
        f"{inviter} invited you to {workspace_name} on Marid",
        f"Join {workspace_name} on Marid",
        [
            f"{inviter} invited you to the workspace “{workspace_name}”, where teams run AI agents on their "
            "projects. You would join as " + ROLE_PHRASES.get(role, role) + ".",
            Button(f"Join {workspace_name}", link),
            Small(
                f"The invitation works for {days} days. New to Marid? The button lets you create your account "
                "with this address, no confirmation mail needed."
            ),
        ],
        footer=f"{inviter} sent this invitation to this address from Marid. Not expecting it? Ignore this message "
        "and nothing happens.",
    )


def email_change(link: str, new_address: str) -> Mail:
    """To the new address: confirming it moves the account there."""
    return build(
        "Confirm your new e-mail address",
        "Confirm your new address",
        [
            f"You asked to use {new_address} for your Marid account. Confirm it, and it becomes the address you "
            "sign in with and get mail at.",
            Button("Use this address", link),
            Small("The link works for 24 hours. Until then your account keeps its current address."),
        ],
        footer=_NOT_YOU,
    )


def email_changed(old_address: str, new_address: str) -> Mail:
    """To the old address, once the change is done: if it was not its owner, they need to know at once."""
    return build(
        "Your Marid e-mail address was changed",
        "Your e-mail address was changed",
        [
            f"Your Marid account now uses {new_address} instead of {old_address}.",
            "If this was not you, reset your password from the sign-in page at once and tell your workspace's owner.",
        ],
        footer=_ACCOUNT,
    )
