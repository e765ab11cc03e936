"""Typed reads of YAML mapping fields, each reporting what is wrong with a position and in plain words.

The parser (``parse.py``) describes each kind of mapping with these helpers; they never raise: a bad value
is reported and read as absent, so one pass reports every structural problem in the file.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping

from app.pipelines.problems import Pos, Problem, error, warning
from app.pipelines.source import YMap, YNode, YScalar, YSeq, node_type

# Ids end up in run and step identifiers, URLs and SVG; output names must be usable as {{variables}}.
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
OUTPUT_PATTERN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")


def quoted(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


class FieldReader:
    """Collects problems while reading; one per document."""

    def __init__(self) -> None:
        self.problems: list[Problem] = []

    def error(self, pos: Pos, code: str, message: str, path: str) -> None:
        self.problems.append(error(pos, code, message, path))

    def warn(self, pos: Pos, code: str, message: str, path: str) -> None:
        self.problems.append(warning(pos, code, message, path))

    def mapping(self, node: YNode, path: str, what: str) -> YMap | None:
        if isinstance(node, YMap):
            return node
        self.error(node.pos, "type", f"{what} must be a mapping (key: value lines), not {node_type(node)}", path)
        return None

    def fields(
        self,
        node: YMap,
        path: str,
        what: str,
        known: Collection[str],
        required: Collection[str] = (),
        ignored: Mapping[str, str] | None = None,
    ) -> dict[str, YNode]:
        """The known fields of ``node`` by YAML key; unknown keys are warnings (DjinnBot drops them too)."""
        found: dict[str, YNode] = {}
        for key, value in node.items:
            name = key.raw
            if name in known:
                found[name] = value
            elif ignored and name in ignored:
                self.warn(key.pos, "ignored_field", f"{quoted(name)} of {what} is ignored: {ignored[name]}", path)
            else:
                hint = difflib.get_close_matches(name, list(known), n=1, cutoff=0.7)
                lowered = {k.lower(): k for k in known}
                prefixed = [k for k in known if len(name) >= 4 and k.lower().startswith(name.lower())]
                guess = hint[0] if hint else lowered.get(name.lower()) or (prefixed[0] if prefixed else None)
                suffix = f"; did you mean {quoted(guess)}?" if guess else ""
                self.warn(
                    key.pos,
                    "unknown_field",
                    f"{what} has an unknown field {quoted(name)}, which is ignored{suffix}",
                    _join(path, name),
                )
        for name in required:
            given = found.get(name)
            if given is None:
                self.error(node.pos, "required", f"{what} is missing the required field {quoted(name)}", path)
            elif isinstance(given, YScalar) and given.value is None:
                self.error(
                    given.pos, "required", f"{quoted(name)} of {what} is empty; it is required", _join(path, name)
                )
                del found[name]
        return found

    def text(self, fields: Mapping[str, YNode], key: str, path: str, what: str) -> str | None:
        node = fields.get(key)
        if node is None:
            return None
        if isinstance(node, YScalar):
            # Numbers and booleans read as written ("version: 1.0" is the text "1.0"); empty is absent.
            return None if node.value is None else node.raw
        self.error(node.pos, "type", f"{quoted(key)} of {what} must be text, not {node_type(node)}", _join(path, key))
        return None

    def identifier(self, fields: Mapping[str, YNode], key: str, path: str, what: str, kind: str) -> str | None:
        value = self.text(fields, key, path, what)
        if value is not None and not ID_PATTERN.match(value):
            message = (
                f"{quoted(value)} is not a valid {kind} id: use letters, digits, '_', '-' and '.', "
                "starting with a letter or digit, at most 64 characters"
            )
            self.error(fields[key].pos, "invalid_id", message, _join(path, key))
        return value

    def boolean(self, fields: Mapping[str, YNode], key: str, path: str, what: str) -> bool | None:
        node = fields.get(key)
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return None
        if isinstance(node, YScalar) and isinstance(node.value, bool):
            return node.value
        self.error(
            node.pos, "type", f"{quoted(key)} of {what} must be true or false, not {node_type(node)}", _join(path, key)
        )
        return None

    def integer(self, fields: Mapping[str, YNode], key: str, path: str, what: str, low: int, high: int) -> int | None:
        node = fields.get(key)
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return None
        value = node.value if isinstance(node, YScalar) else None
        if not isinstance(value, int) or isinstance(value, bool):
            self.error(
                node.pos,
                "type",
                f"{quoted(key)} of {what} must be a whole number, not {node_type(node)}",
                _join(path, key),
            )
            return None
        return value if self._in_range(node, key, path, what, value, low, high) else None

    def number(
        self, fields: Mapping[str, YNode], key: str, path: str, what: str, low: float, high: float
    ) -> float | None:
        node = fields.get(key)
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return None
        value = node.value if isinstance(node, YScalar) else None
        if not isinstance(value, int | float) or isinstance(value, bool) or not math.isfinite(value):
            self.error(
                node.pos, "type", f"{quoted(key)} of {what} must be a number, not {node_type(node)}", _join(path, key)
            )
            return None
        return value if self._in_range(node, key, path, what, value, low, high) else None

    def _in_range(self, node: YNode, key: str, path: str, what: str, value: float, low: float, high: float) -> bool:
        if low <= value <= high:
            return True
        message = f"{quoted(key)} of {what} is {_number(value)}; it must be between {_number(low)} and {_number(high)}"
        self.error(node.pos, "range", message, _join(path, key))
        return False

    def text_list(self, fields: Mapping[str, YNode], key: str, path: str, what: str) -> tuple[str, ...] | None:
        node = fields.get(key)
        if node is None or (isinstance(node, YScalar) and node.value is None):
            return None
        if not isinstance(node, YSeq):
            self.error(
                node.pos, "type", f"{quoted(key)} of {what} must be a list, not {node_type(node)}", _join(path, key)
            )
            return None
        values: list[str] = []
        for index, item in enumerate(node.items):
            if isinstance(item, YScalar) and item.value is not None:
                values.append(item.raw)
            else:
                message = f"item {index + 1} of {quoted(key)} of {what} must be text, not {node_type(item)}"
                self.error(item.pos, "type", message, f"{_join(path, key)}[{index}]")
        return tuple(values)


def positions(fields: Mapping[str, YNode]) -> dict[str, Pos]:
    return {key: node.pos for key, node in fields.items()}


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
