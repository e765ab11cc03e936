"""Reading pipeline YAML safely into a small tree of positioned nodes.

The YAML is user input (typed into the editor, imported from a file), so the reader:

* refuses files over :data:`MAX_BYTES` before parsing anything;
* refuses anchors and aliases outright: a pipeline never needs them and they are how "billion laughs" files
  blow up a consumer that walks the tree;
* refuses nesting deeper than :data:`MAX_DEPTH` (no pipeline needs it; it bounds what a file can ask of us);
* refuses explicit tags other than the core ones (``!!python/object`` and friends never reach a constructor:
  we build values ourselves);
* resolves plain scalars with the YAML 1.2 core schema, as DjinnBot's JavaScript ``yaml`` package does, so
  ``on``/``yes``/``no`` stay text and a DjinnBot file means the same thing here;
* reports duplicate keys (YAML forbids them; PyYAML would silently keep the last).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import yaml
from yaml.events import (
    AliasEvent,
    CollectionEndEvent,
    CollectionStartEvent,
    DocumentStartEvent,
    MappingStartEvent,
    NodeEvent,
    ScalarEvent,
)

from app.pipelines.problems import START, Pos, Problem, error

MAX_BYTES = 256 * 1024
MAX_DEPTH = 48

_TAG = "tag:yaml.org,2002:"
_NULL = re.compile(r"^(?:~|null|Null|NULL|)$")
_BOOL = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_INT = re.compile(r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$")
_FLOAT = re.compile(
    r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
)
_CORE_TAGS = {_TAG + name for name in ("null", "bool", "int", "float", "str", "map", "seq")}

Scalar = str | int | float | bool | None


@dataclass(frozen=True, slots=True)
class YScalar:
    value: Scalar
    # The scalar as written (after YAML unescaping): ``1.0`` stays "1.0" for a version string.
    raw: str
    pos: Pos
    # Offsets of the node in the source text, to place a finding inside a multi-line value (a template).
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class YSeq:
    items: tuple[YNode, ...]
    pos: Pos


@dataclass(frozen=True, slots=True)
class YMap:
    items: tuple[tuple[YScalar, YNode], ...]
    pos: Pos

    def keys(self) -> Iterator[str]:
        return (key.raw for key, _ in self.items)


YNode = YScalar | YSeq | YMap


@dataclass(frozen=True, slots=True)
class Document:
    root: YNode | None
    text: str
    problems: tuple[Problem, ...]

    def pos_at(self, offset: int) -> Pos:
        """The 1-based line and column of a character offset in the source."""
        line = self.text.count("\n", 0, offset)
        return Pos(line + 1, offset - (self.text.rfind("\n", 0, offset) + 1) + 1)


class _Refused(Exception):
    def __init__(self, pos: Pos, code: str, message: str) -> None:
        super().__init__(message)
        self.problem = error(pos, code, message)


def _pos(mark: Any) -> Pos:
    return Pos(mark.line + 1, mark.column + 1) if mark is not None else START


# libyaml's parser (in the PyYAML wheel) is about ten times faster than the pure-Python one: live validation
# re-reads the whole file on every keystroke. Both yield the same events; we build our nodes from them.
_EventLoader: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _syntax_message(exc: yaml.MarkedYAMLError, text: str) -> str:
    mark = exc.problem_mark
    if mark is not None and 0 <= mark.index < len(text) and text[mark.index] == "\t":
        return "YAML syntax error: a tab character; indent YAML with spaces"
    problem = exc.problem or "invalid YAML"
    if exc.context and problem.startswith("but "):
        return f"YAML syntax error: {exc.context}, {problem}"
    context = f" ({exc.context})" if exc.context else ""
    return f"YAML syntax error: {problem}{context}"


def read_yaml(source: str | bytes) -> Document:
    """Parse ``source`` into positioned nodes; a document with ``root=None`` carries the reason."""
    if isinstance(source, bytes):
        if len(source) > MAX_BYTES:
            return _too_large(len(source))
        try:
            text = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            before = source[: exc.start].decode("utf-8", "replace")
            where = Document(None, before, ()).pos_at(len(before))
            return Document(None, "", (error(where, "yaml.encoding", "the file is not UTF-8 text"),))
    else:
        text = source.removeprefix("\ufeff")
        if len(text) > MAX_BYTES or len(text.encode("utf-8", "replace")) > MAX_BYTES:
            return _too_large(len(text.encode("utf-8", "replace")))
    problems: list[Problem] = []
    try:
        root = _Composer(problems).compose(yaml.parse(text, Loader=_EventLoader))
    except _Refused as exc:
        return Document(None, text, (exc.problem,))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return Document(None, text, (error(_pos(mark), "yaml.syntax", _syntax_message(exc, text)),))
    except yaml.YAMLError as exc:  # a reader error (a control character) may carry no mark
        return Document(None, text, (error(START, "yaml.syntax", f"YAML syntax error: {exc}"),))
    if root is None:
        return Document(None, text, (error(START, "yaml.empty", "the pipeline is empty"),))
    return Document(root, text, tuple(problems))


def _too_large(size: int) -> Document:
    message = f"the file is {size:,} bytes; a pipeline may be at most {MAX_BYTES:,}"
    return Document(None, "", (error(START, "yaml.too_large", message),))


@dataclass
class _Frame:
    pos: Pos
    items: list[Any]  # nodes of a sequence, or (key, value) pairs of a mapping
    is_map: bool
    key: YScalar | None = None
    bad_key: bool = False  # the pending key was not a scalar: its value is dropped
    seen: dict[str, Pos] | None = None


class _Composer:
    """Builds nodes from parser events without recursion; refuses anchors, aliases and deep nesting."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems

    def compose(self, events: Iterator[Any]) -> YNode | None:
        stack: list[_Frame] = []
        root: YNode | None = None
        documents = 0
        for event in events:
            if isinstance(event, DocumentStartEvent):
                documents += 1
                if documents > 1:
                    message = "the file holds more than one YAML document (a second starts here); a pipeline is one"
                    raise _Refused(_pos(event.start_mark), "yaml.documents", message)
                continue
            if isinstance(event, AliasEvent):
                raise _Refused(
                    _pos(event.start_mark), "yaml.alias", "YAML aliases (*name) are not allowed in a pipeline"
                )
            if isinstance(event, NodeEvent) and event.anchor is not None:
                raise _Refused(
                    _pos(event.start_mark), "yaml.alias", "YAML anchors (&name) are not allowed in a pipeline"
                )
            node: YNode
            if isinstance(event, ScalarEvent):
                node = self._scalar(event)
            elif isinstance(event, CollectionStartEvent):
                if len(stack) >= MAX_DEPTH:
                    raise _Refused(
                        _pos(event.start_mark), "yaml.depth", f"the YAML is nested more than {MAX_DEPTH} deep"
                    )
                is_map = isinstance(event, MappingStartEvent)
                self._check_tag(event.tag, _pos(event.start_mark))
                stack.append(_Frame(_pos(event.start_mark), [], is_map, seen={} if is_map else None))
                continue
            elif isinstance(event, CollectionEndEvent):
                frame = stack.pop()
                node = YMap(tuple(frame.items), frame.pos) if frame.is_map else YSeq(tuple(frame.items), frame.pos)
            else:
                continue  # stream and document ends
            if not stack:
                root = node
            else:
                self._attach(stack[-1], node)
        return root

    def _attach(self, frame: _Frame, node: YNode) -> None:
        if not frame.is_map:
            frame.items.append(node)
            return
        if frame.key is None and not frame.bad_key:
            if isinstance(node, YScalar):
                frame.key = node
            else:
                self.problems.append(
                    error(node.pos, "yaml.key", "a mapping key must be plain text, not a list or mapping")
                )
                frame.bad_key = True
            return
        key, frame.key, frame.bad_key = frame.key, None, False
        if key is None:
            return
        assert frame.seen is not None
        first = frame.seen.get(key.raw)
        if first is not None:
            message = f"the key {key.raw!r} appears twice in this mapping (first on line {first.line})"
            self.problems.append(error(key.pos, "yaml.duplicate_key", message))
            return
        frame.seen[key.raw] = key.pos
        frame.items.append((key, node))

    def _scalar(self, event: ScalarEvent) -> YScalar:
        pos = _pos(event.start_mark)
        tag = event.tag
        if tag is None or tag == "!":
            tag = _resolve(event.value) if event.implicit[0] else _TAG + "str"
        else:
            self._check_tag(tag, pos)
        raw = str(event.value)
        start = event.start_mark.index if event.start_mark is not None else 0
        end = event.end_mark.index if event.end_mark is not None else start
        return YScalar(_scalar_value(tag, raw), raw, pos, start, end)

    def _check_tag(self, tag: str | None, pos: Pos) -> None:
        if tag is not None and tag != "!" and tag not in _CORE_TAGS:
            self.problems.append(error(pos, "yaml.tag", f"the YAML tag {_short_tag(tag)} is not allowed in a pipeline"))


def _resolve(value: str) -> str:
    """A plain scalar's type by the YAML 1.2 core schema."""
    for tag, pattern in (("null", _NULL), ("bool", _BOOL), ("int", _INT), ("float", _FLOAT)):
        if pattern.match(value):
            return _TAG + tag
    return _TAG + "str"


def _short_tag(tag: str) -> str:
    return "!!" + tag[len(_TAG) :] if tag.startswith(_TAG) else tag


def _scalar_value(tag: str, raw: str) -> Scalar:
    # An explicit !!int on something that is not a number falls back to text; the field check then says so.
    try:
        if tag == _TAG + "null":
            return None
        if tag == _TAG + "bool":
            return raw.lower() == "true"
        if tag == _TAG + "int":
            return int(raw, 0) if raw.startswith(("0o", "0x")) else int(raw, 10)
        if tag == _TAG + "float":
            special = raw.lower().lstrip("+")
            if special in (".inf", "-.inf", ".nan"):
                return float(special.replace(".", ""))
            return float(raw)
    except ValueError:
        return raw
    return raw


def plain(node: YNode) -> Any:
    """The node as plain Python data (dicts, lists, scalars), e.g. a JSON Schema."""
    if isinstance(node, YMap):
        return {key.raw: plain(value) for key, value in node.items}
    if isinstance(node, YSeq):
        return [plain(item) for item in node.items]
    return node.value


def node_type(node: YNode) -> str:
    """How a user would name what they wrote, for messages ("expected a number, found a list")."""
    if isinstance(node, YMap):
        return "a mapping"
    if isinstance(node, YSeq):
        return "a list"
    if node.value is None:
        return "nothing (an empty value)"
    if isinstance(node.value, bool):
        return f"true/false ({node.raw})"
    if isinstance(node.value, int | float):
        return f"a number ({node.raw})"
    return "text"
