"""What validation reports: one :class:`Problem` per finding, each pinned to a line and column of the YAML.

Errors make a pipeline unusable (the editor refuses to save it as runnable, the engine refuses to start it);
warnings are things a DjinnBot file may legitimately contain (a field we ignore, a step nothing reaches) and
that the author should still see.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Severity(enum.StrEnum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, order=True)
class Pos:
    """A place in the YAML source, both 1-based (as editors count)."""

    line: int
    column: int


START = Pos(1, 1)


@dataclass(frozen=True, slots=True)
class Problem:
    # Sorted by place first so a list reads top to bottom like the file.
    line: int
    column: int
    severity: Severity
    # A stable identifier of the kind of problem (tests and the editor key on it; the message may change).
    code: str
    message: str
    # Where in the document, e.g. ``steps[2].onResult.APPROVED.goto``; "" for the whole file.
    path: str = ""

    @property
    def pos(self) -> Pos:
        return Pos(self.line, self.column)

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.severity}: {self.message}"


def error(pos: Pos, code: str, message: str, path: str = "") -> Problem:
    return Problem(pos.line, pos.column, Severity.ERROR, code, message, path)


def warning(pos: Pos, code: str, message: str, path: str = "") -> Problem:
    return Problem(pos.line, pos.column, Severity.WARNING, code, message, path)


def sort_problems(problems: list[Problem]) -> tuple[Problem, ...]:
    """Top to bottom, errors before warnings at the same place, duplicates dropped."""
    rank = {Severity.ERROR: 0, Severity.WARNING: 1}
    unique = dict.fromkeys(problems)
    return tuple(sorted(unique, key=lambda p: (p.line, p.column, rank[p.severity], p.code, p.message)))
