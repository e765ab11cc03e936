"""The text of every mail Marid sends. Plain text: readable everywhere, nothing to render unsafely."""

from __future__ import annotations

from app.security.single_line import strip_control_characters

SIGNATURE = "\n\n— Marid\nYou got this because someone used this address on Marid. If that was not you, ignore it."


def verify_email(link: str) -> tuple[str, str]:
    return (
        "Confirm your e-mail address",
        f"Welcome to Marid.\n\nConfirm your address to finish setting up your account:\n\n{link}\n\n"
        "The link works for 48 hours." + SIGNATURE,
    )


def already_registered(login_link: str, reset_link: str) -> tuple[str, str]:
    return (
        "You already have a Marid account",
        "Someone (hopefully you) tried to create a Marid account with this address, which already has one.\n\n"
        f"Sign in: {login_link}\nForgot your password? {reset_link}" + SIGNATURE,
    )


def password_reset(link: str, identities: list[str] | None = None) -> tuple[str, str]:
    """``identities``: one line per single sign-on identity that can also sign in to the account."""
    linked = ""
    if identities:
        lines = "\n".join(f"- {line}" for line in identities)
        linked = (
            "\n\nThese identity providers can also sign you in to this account (a new password does not change "
            f"that):\n{lines}\nDon't recognise one? Unlink it on your account's Security page after signing in."
        )
    return (
        "Reset your Marid password",
        f"Choose a new password here:\n\n{link}\n\nThe link works once, for 30 minutes. "
        "Resetting your password signs you out everywhere else." + linked + SIGNATURE,
    )


def identity_linked(*, issuer: str, workspace: str, email_at_link: str, how: str) -> tuple[str, str]:
    who = f" as {email_at_link}" if email_at_link else ""
    return (
        "A single sign-on identity was linked to your Marid account",
        f"The identity provider {issuer} (single sign-on of the workspace “{workspace}”) can now sign you in to "
        f"your Marid account: you signed in there{who}. How: {how}.\n\n"
        "If this was not you, unlink it on your account's Security page and change your password." + SIGNATURE,
    )


def identity_unlinked(identity: str) -> tuple[str, str]:
    return (
        "A single sign-on identity was unlinked from your Marid account",
        f"This identity provider can no longer sign you in to your Marid account:\n\n- {identity}\n\n"
        "If this was not you, change your password and check your sessions." + SIGNATURE,
    )


def invitation(workspace_name: str, inviter: str, role: str, link: str, days: int) -> tuple[str, str]:
    # Names are refused with control characters today, but rows from before that rule may still hold some:
    # they must never reach the Subject header.
    workspace_name, inviter = strip_control_characters(workspace_name), strip_control_characters(inviter)
    return (
        f"{inviter} invited you to {workspace_name} on Marid",
        f"{inviter} invited you to join the workspace “{workspace_name}” on Marid as {role}.\n\n"
        f"Accept the invitation:\n\n{link}\n\nThe link works for {days} days." + SIGNATURE,
    )
