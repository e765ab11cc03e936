"""Who did something: a person, an agent, or Marid itself. Built once per request or job, handed to services.

The audit log records the actor's kind, id and label as they were at the time (a member who leaves is still
named), and the activity feed says the label in its sentence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum


class ActorKind(StrEnum):
    PERSON = "person"
    AGENT = "agent"
    SYSTEM = "system"


@dataclass(frozen=True)
class Actor:
    kind: ActorKind
    # A user id (person) or an agent id; None for the system.
    id: str | None
    # How the feed names them: a person's display name (or e-mail), an agent's name; "" for nobody in particular.
    label: str
    # Where the request came from, for the audit log; "" for jobs. Kept with the actor because both are
    # known once per request, and every entry of that request records both.
    ip: str = ""

    @classmethod
    def person(cls, user_id: uuid.UUID, label: str, *, ip: str = "") -> Actor:
        return cls(ActorKind.PERSON, str(user_id), label, ip[:64])

    @classmethod
    def system(cls, label: str = "", *, ip: str = "") -> Actor:
        return cls(ActorKind.SYSTEM, None, label, ip[:64])

    @property
    def user_id(self) -> uuid.UUID | None:
        """The person's user id (None for agents and the system)."""
        if self.kind != ActorKind.PERSON or self.id is None:
            return None
        return uuid.UUID(self.id)


def person_label(display_name: str, email: str) -> str:
    """How the activity feed names a person."""
    return display_name or email
