"""What a service raises when it will not do what it was asked: a few kinds, each with words for the person.

Services raise these (or their own subclasses: ``MemberError``, ``ApiKeyError``...); they never build an HTTP
answer. The edges map them in one place each: :func:`app.api.errors.api_error_of` for the JSON API, and
:func:`app.web.errors.page_status` for pages. A handler therefore has no ``try/except`` of its own unless a
page wants to show the form again with what was typed.
"""

from __future__ import annotations


class ServiceError(Exception):
    """A refusal: ``message`` says why, in words for the user (never a secret, never a stack trace)."""

    # The JSON API's error code, when the kind's default does not say enough.
    code: str | None = None

    def __init__(self, message: str = "") -> None:
        super().__init__(message)
        self.message = message


class Refused(ServiceError):
    """A business rule says no (the owner cannot be removed, the key was already revoked...): 422."""


class Invalid(Refused):
    """The input is not valid; ``errors`` maps each field to its problem (``_form`` for the whole form)."""

    def __init__(self, errors: dict[str, str] | str, *, field: str = "_form") -> None:
        self.errors = {field: errors} if isinstance(errors, str) else dict(errors)
        super().__init__("; ".join(self.errors.values()))


class Forbidden(ServiceError):
    """The actor may not do this (their role, their kind of credential): 403."""


class NotFound(ServiceError):
    """What was named does not exist, or not for this actor (the same answer, so nothing leaks): 404."""


class Conflict(ServiceError):
    """The request clashes with the current state (submitted twice, taken by someone else...): 409."""


class TooManyRequests(ServiceError):
    """A rate limit refused it; ``retry_after`` in seconds when known: 429."""

    def __init__(self, message: str = "", *, retry_after: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
