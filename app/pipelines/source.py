"""Reading pipeline YAML safely into a small tree of positioned nodes.

The YAML is user input (typed into the editor, imported from a file), so the reader:

* refuses files over :data:`MAX_BYTES` before parsing anything;
* refuses anchors and aliases outright: a pipeline never needs them and they are how "billion laughs" files
  blow up a consumer that walks the tree;
* refuses nesting deeper than :data:`MAX_DEPTH` (PyYAML's composer recurses per level);
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
from yaml.events import AliasEvent, CollectionStartEvent, ScalarEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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


class _Loader(yaml.SafeLoader):
    """SafeLoader's scanner and parser; our own scalar resolution; no anchors, no aliases, bounded depth."""

    _depth = 0

    def resolve(self, kind: Any, value: Any, implicit: Any) -> str:
        if kind is ScalarNode:
            if not implicit[0]:  # quoted or block scalar: always text
                return _TAG + "str"
            for tag, pattern in (("null", _NULL), ("bool", _BOOL), ("int", _INT), ("float", _FLOAT)):
                if pattern.match(value):
                    return _TAG + tag
            return _TAG + "str"
        return _TAG + ("seq" if kind is SequenceNode else "map")

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            raise _Refused(_pos(event.start_mark), "yaml.alias", "YAML aliases (*name) are not allowed in a pipeline")
        if isinstance(event, ScalarEvent | CollectionStartEvent) and event.anchor is not None:
            raise _Refused(_pos(event.start_mark), "yaml.alias", "YAML anchors (&name) are not allowed in a pipeline")
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(_pos(event.start_mark), "yaml.depth", f"the YAML is nested more than {MAX_DEPTH} deep")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _syntax_message(exc: yaml.MarkedYAMLError) -> str:
    problem = exc.problem or "invalid YAML"
    if "'\\t'" in problem:
        return "YAML syntax error: a tab character; indent YAML with spaces"
    if exc.context and problem.startswith("but "):  # "expected a single document in the stream, but found ..."
        return f"YAML syntax error: {exc.context}, {problem}"
    context = f" ({exc.context})" if exc.context else ""
    return f"YAML syntax error: {problem}{context}"


def read_yaml(source: str | bytes) -> Document:
    """Parse ``source`` into positioned nodes; a document with ``root=None`` carries the reason."""
    if isinstance(source, bytes):
        if len(source) > MAX_BYTES:
            return _too_large("", len(source))
        try:
            text = source.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            before = source[: exc.start].decode("utf-8", "replace")
            where = Document(None, before, ()).pos_at(len(before))
            return Document(None, "", (error(where, "yaml.encoding", "the file is not UTF-8 text"),))
    else:
        text = source
        if len(text) > MAX_BYTES or len(text.encode("utf-8", "replace")) > MAX_BYTES:
            return _too_large(text, len(text.encode("utf-8", "replace")))
    loader = _Loader(text)
    try:
        node = loader.get_single_node()
    except _Refused as exc:
        return Document(None, text, (exc.problem,))
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        return Document(None, text, (error(_pos(mark), "yaml.syntax", _syntax_message(exc)),))
    except yaml.YAMLError as exc:  # a reader error (a control character) carries no mark
        return Document(None, text, (error(START, "yaml.syntax", f"YAML syntax error: {exc}"),))
    finally:
        loader.dispose()
    if node is None:
        return Document(None, text, (error(START, "yaml.empty", "the pipeline is empty"),))
    problems: list[Problem] = []
    root = _convert(node, problems)
    return Document(root, text, tuple(problems))


def _too_large(text: str, size: int) -> Document:
    message = f"the file is {size:,} bytes; a pipeline may be at most {MAX_BYTES:,}"
    return Document(None, "", (error(START, "yaml.too_large", message),))


def _convert(node: Node, problems: list[Problem]) -> YNode:
    pos = _pos(node.start_mark)
    if node.tag not in _CORE_TAGS:
        problems.append(error(pos, "yaml.tag", f"the YAML tag {_short_tag(node.tag)} is not allowed in a pipeline"))
    if isinstance(node, MappingNode):
        items: list[tuple[YScalar, YNode]] = []
        seen: dict[str, Pos] = {}
        for key_node, value_node in node.value:
            key = _convert(key_node, problems)
            if not isinstance(key, YScalar):
                problems.append(error(key.pos, "yaml.key", "a mapping key must be plain text, not a list or mapping"))
                continue
            if key.raw in seen:
                first = seen[key.raw]
                message = f"the key {key.raw!r} appears twice in this mapping (first on line {first.line})"
                problems.append(error(key.pos, "yaml.duplicate_key", message))
                continue
            seen[key.raw] = key.pos
            items.append((key, _convert(value_node, problems)))
        return YMap(tuple(items), pos)
    if isinstance(node, SequenceNode):
        return YSeq(tuple(_convert(item, problems) for item in node.value), pos)
    raw = str(node.value)
    return YScalar(_scalar_value(node.tag, raw), raw, pos, node.start_mark.index, node.end_mark.index)


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
