"""Step input templates: ``{{var}}`` and ``{% if var %}…{% else %}…{% endif %}``, nothing more.

Templates are user input and variable values are agent output, so this is deliberately not Jinja: no
expressions, no attribute access, no filters, nothing that runs code. It is a superset of DjinnBot's
``template.ts``: the same ``{{name}}`` substitution (missing names become empty text) and the same truth
test (a value that is present and not blank), plus whitespace inside the braces, nesting (DjinnBot's regex
stops at the first ``endif``) and ``else``. Values are inserted once and never re-read as template text,
so an agent cannot inject ``{{…}}`` into a later step's prompt.

Any other ``{% … %}`` tag is left as written, as DjinnBot does; validation warns about it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

# Names as DjinnBot matches them: letters, digits and '_'. Anything else in braces stays literal text.
_TOKEN = re.compile(r"\{\{\s*(?P<var>[A-Za-z0-9_]+)\s*\}\}|\{%-?\s*(?P<tag>.*?)\s*-?%\}", re.DOTALL)
_IF = re.compile(r"^if\s+(?P<name>[A-Za-z0-9_]+)$")

# What the engine provides to every step (the contract's variables), beside every prior step's outputs.
RUN_VARIABLES = frozenset(
    {"task_description", "human_context", "project_name", "project_id", "project_vision", "additional_context"}
)
LOOP_VARIABLES = frozenset({"current_item", "completed_items", "progress_file"})
# What the GitHub integration adds when a run resolves an issue (DjinnBot's ``resolve`` pipeline reads them).
ISSUE_VARIABLES = frozenset(
    {
        "issue_number",
        "issue_title",
        "issue_body",
        "issue_comments",
        "issue_labels",
        "issue_author",
        "issue_created_at",
        "repo_full_name",
    }
)
BUILTIN_VARIABLES = RUN_VARIABLES | LOOP_VARIABLES | ISSUE_VARIABLES


class TemplateSyntaxError(ValueError):
    def __init__(self, message: str, offset: int, length: int) -> None:
        super().__init__(message)
        self.message = message
        self.offset = offset
        self.length = length


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Var:
    name: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class If:
    name: str
    offset: int
    length: int
    then: tuple[Part, ...]
    otherwise: tuple[Part, ...]


Part = Text | Var | If


@dataclass(frozen=True, slots=True)
class UnknownTag:
    """A ``{% … %}`` tag this language does not know; rendered as written."""

    text: str
    offset: int
    length: int


@dataclass(frozen=True, slots=True)
class Template:
    parts: tuple[Part, ...]
    unknown_tags: tuple[UnknownTag, ...]

    def variables(self) -> tuple[Var | If, ...]:
        """Every variable use in order of appearance (``{{x}}`` and the names tested by ``{% if x %}``)."""
        found: list[Var | If] = []
        _collect(self.parts, found)
        return tuple(found)

    def render(self, values: Mapping[str, str]) -> str:
        out: list[str] = []
        _render(self.parts, values, out)
        return "".join(out)


@dataclass
class _Frame:
    tag: If | None  # None for the top level
    then: list[Part]
    otherwise: list[Part] | None = None

    @property
    def current(self) -> list[Part]:
        return self.otherwise if self.otherwise is not None else self.then


def parse_template(text: str) -> Template:
    """Parse ``text``; raises :class:`TemplateSyntaxError` for an unbalanced ``if``/``else``/``endif``."""
    stack = [_Frame(None, [])]
    unknown: list[UnknownTag] = []
    position = 0
    for match in _TOKEN.finditer(text):
        start, end = match.span()
        if start > position:
            stack[-1].current.append(Text(text[position:start]))
        position = end
        if match.group("var") is not None:
            stack[-1].current.append(Var(match.group("var"), start, end - start))
            continue
        tag = match.group("tag")
        words = tag.split()
        keyword = words[0] if words else ""
        if keyword == "if":
            condition = _IF.match(" ".join(words))
            if condition is None:
                message = "{% if %} takes exactly one variable name, e.g. {% if review_feedback %}"
                raise TemplateSyntaxError(message, start, end - start)
            stack.append(_Frame(If(condition.group("name"), start, end - start, (), ()), []))
        elif keyword in ("else", "endif") and len(words) == 1:
            frame = stack[-1]
            if frame.tag is None:
                raise TemplateSyntaxError(f"{{% {keyword} %}} without a {{% if %}} before it", start, end - start)
            if keyword == "else":
                if frame.otherwise is not None:
                    raise TemplateSyntaxError("a second {% else %} in the same {% if %}", start, end - start)
                frame.otherwise = []
            else:
                stack.pop()
                block = If(
                    frame.tag.name, frame.tag.offset, frame.tag.length, tuple(frame.then), tuple(frame.otherwise or ())
                )
                stack[-1].current.append(block)
        else:
            unknown.append(UnknownTag(match.group(0), start, end - start))
            stack[-1].current.append(Text(match.group(0)))
    if position < len(text):
        stack[-1].current.append(Text(text[position:]))
    if len(stack) > 1:
        opened = stack[-1].tag
        assert opened is not None
        raise TemplateSyntaxError(
            f"{{% if {opened.name} %}} is never closed with {{% endif %}}", opened.offset, opened.length
        )
    return Template(tuple(stack[0].then), tuple(unknown))


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Render ``text`` with ``values``; a missing variable renders as empty text, as in DjinnBot."""
    return parse_template(text).render(values)


def is_set(values: Mapping[str, str], name: str) -> bool:
    value = values.get(name)
    return value is not None and value.strip() != ""


def _render(parts: tuple[Part, ...], values: Mapping[str, str], out: list[str]) -> None:
    for part in parts:
        if isinstance(part, Text):
            out.append(part.text)
        elif isinstance(part, Var):
            out.append(values.get(part.name, ""))
        else:
            _render(part.then if is_set(values, part.name) else part.otherwise, values, out)


def _collect(parts: tuple[Part, ...], found: list[Var | If]) -> None:
    for part in parts:
        if isinstance(part, Var):
            found.append(part)
        elif isinstance(part, If):
            found.append(part)
            _collect(part.then, found)
            _collect(part.otherwise, found)
