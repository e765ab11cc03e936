"""The step graph as a server-rendered SVG (the editor's preview and, with statuses, a run's timeline).

Safe for user input: every id, agent and label is XML-escaped (and stripped of characters XML cannot hold);
nothing is drawn from raw markup. Styling is by presentation attributes plus CSS classes (``step``,
``status-<status>``, ``edge edge-<kind>``) the app's stylesheet may refine: no ``<style>`` element and no
``style`` attribute, which the app's Content-Security-Policy forbids.

Accessible: ``role="img"`` with a ``<title>`` and a ``<desc>`` that says, step by step, where each one goes.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from xml.sax.saxutils import escape, quoteattr

from app.pipelines.graph import END, Edge, EdgeKind
from app.pipelines.layout import CHAR_W, Box, RoutedEdge, layout
from app.pipelines.spec import Pipeline, Step

_FONT = "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif"
_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_NOT_CLASS = re.compile(r"[^a-z0-9_-]+")

# (fill, stroke) of a step box by run status; no status: a plain box.
STATUS_COLOURS: Mapping[str, tuple[str, str]] = {
    "pending": ("#f8fafc", "#94a3b8"),
    "queued": ("#eff6ff", "#60a5fa"),
    "running": ("#dbeafe", "#2563eb"),
    "completed": ("#dcfce7", "#16a34a"),
    "failed": ("#fee2e2", "#dc2626"),
    "cancelled": ("#f1f5f9", "#64748b"),
    "retrying": ("#fef3c7", "#d97706"),
}
_PLAIN = ("#ffffff", "#64748b")

# (stroke colour name, colour, dash pattern) per edge kind: loop edges dashed, retries dotted.
_EDGE_STYLE: Mapping[EdgeKind, tuple[str, str, str | None]] = {
    EdgeKind.COMPLETE: ("slate", "#475569", None),
    EdgeKind.END: ("slate", "#475569", None),
    EdgeKind.GOTO: ("blue", "#2563eb", None),
    EdgeKind.RETRY: ("amber", "#b45309", "2 3"),
    EdgeKind.CONTINUE: ("violet", "#7c3aed", "6 4"),
    EdgeKind.EACH: ("violet", "#7c3aed", "6 4"),
    EdgeKind.NEXT_ITEM: ("violet", "#7c3aed", "6 4"),
    EdgeKind.ALL_DONE: ("violet", "#7c3aed", "6 4"),
}
_KIND_LABEL = {EdgeKind.EACH: "each item", EdgeKind.NEXT_ITEM: "next item", EdgeKind.ALL_DONE: "all done"}


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


def _attr(value: str) -> str:
    return quoteattr(_NOT_XML.sub("", value))


def _clip(value: str, width: int, char_w: float) -> str:
    room = max(int((width - 16) / char_w), 4)
    return value if len(value) <= room else value[: room - 1] + "…"


def render_svg(pipeline: Pipeline, statuses: Mapping[str, str] | None = None, *, id_prefix: str | None = None) -> str:
    """The pipeline's step graph as an SVG document fragment (an ``<svg>`` element), sized to its content.

    ``statuses`` maps step ids to run statuses (``pending``, ``running``, ``completed``, ...) to colour the
    boxes; ``id_prefix`` keeps the marker ids unique when several graphs share a page.
    """
    statuses = statuses or {}
    prefix = id_prefix or "pg-" + (_NOT_CLASS.sub("-", pipeline.id.lower()).strip("-") or "pipeline")
    shape = layout(pipeline)
    title = f"Step graph of pipeline {pipeline.name or pipeline.id}"
    label = f"{title}: {len(shape.boxes) - sum(b.is_end for b in shape.boxes)} steps"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="pipeline-graph" role="img" width="{shape.width}" '
        f'height="{shape.height}" viewBox="0 0 {shape.width} {shape.height}" aria-label={_attr(label)} '
        f'aria-describedby="{prefix}-desc" font-family={_attr(_FONT)}>',
        f"<title>{_text(title)}</title>",
        f'<desc id="{prefix}-desc">{_text(describe(pipeline, shape.edges))}</desc>',
        "<defs>",
    ]
    for name, colour in sorted({(n, c) for n, c, _ in _EDGE_STYLE.values()}):
        out.append(
            f'<marker id="{prefix}-arrow-{name}" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0 0L10 5L0 10z" fill="{colour}"/></marker>'
        )
    out.append("</defs>")
    out.append('<g class="edges" fill="none">')
    out.extend(_edge(routed, prefix) for routed in shape.edges)
    out.append("</g>")
    out.append('<g class="edge-labels" font-size="11">')
    placed: list[tuple[int, int, int, int]] = []
    out.extend(_edge_label(routed, placed) for routed in shape.edges if _label_of(routed.edge))
    out.append("</g>")
    out.append('<g class="steps">')
    steps = _first_by_id(pipeline)
    for box in shape.boxes:
        if box.is_end:
            out.append(_end_box(box))
            continue
        step = steps[box.id]
        out.append(_step_box(box, step.agent, step.is_loop, statuses.get(box.id)))
    out.append("</g></svg>")
    return "\n".join(out)


def _first_by_id(pipeline: Pipeline) -> dict[str, Step]:
    found: dict[str, Step] = {}
    for step in pipeline.steps:
        if step.id:
            found.setdefault(step.id, step)
    return found


def _step_box(box: Box, agent: str, is_loop: bool, status: str | None) -> str:
    fill, stroke = STATUS_COLOURS.get(status or "", _PLAIN)
    css = "step" + (" step-loop" if is_loop else "")
    if status:
        css += " status-" + (_NOT_CLASS.sub("-", status.lower()).strip("-") or "unknown")
    tooltip = f"{box.id} (agent {agent or '?'})" + (", a loop" if is_loop else "") + (f": {status}" if status else "")
    cx = box.x + box.w // 2
    second = ("loop · " if is_loop else "") + (agent or "no agent")
    width = 2 if status == "running" else 1
    parts = [
        f'<g class="{css}" data-step={_attr(box.id)}>',
        f"<title>{_text(tooltip)}</title>",
        f'<rect x="{box.x}" y="{box.y}" width="{box.w}" height="{box.h}" rx="8" fill="{fill}" stroke="{stroke}" '
        f'stroke-width="{width}"/>',
    ]
    if is_loop:  # a second outline marks a loop step without relying on colour
        parts.append(
            f'<rect x="{box.x + 3}" y="{box.y + 3}" width="{box.w - 6}" height="{box.h - 6}" rx="6" fill="none" '
            f'stroke="{stroke}" stroke-dasharray="4 3"/>'
        )
    parts += [
        f'<text x="{cx}" y="{box.y + 20}" text-anchor="middle" font-size="13" font-weight="600" fill="#0f172a">'
        f"{_text(_clip(box.id, box.w, CHAR_W))}</text>",
        f'<text x="{cx}" y="{box.y + 37}" text-anchor="middle" font-size="11" fill="#475569">'
        f"{_text(_clip(second, box.w, CHAR_W * 0.85))}</text>",
        "</g>",
    ]
    return "".join(parts)


def _end_box(box: Box) -> str:
    cx, cy = box.x + box.w // 2, box.y + box.h // 2
    return (
        f'<g class="step-end"><title>End of the run</title><rect x="{box.x}" y="{box.y + 8}" width="{box.w}" '
        f'height="{box.h - 16}" rx="{(box.h - 16) // 2}" fill="#0f172a"/><text x="{cx}" y="{cy + 4}" '
        f'text-anchor="middle" font-size="12" fill="#ffffff">end</text></g>'
    )


def _path(routed: RoutedEdge) -> str:
    p = routed.points
    if routed.curve and len(p) == 4:  # a self-loop: one cubic through its control points
        return f"M{p[0][0]} {p[0][1]}C{p[1][0]} {p[1][1]} {p[2][0]} {p[2][1]} {p[3][0]} {p[3][1]}"
    if routed.curve:
        (x1, y1), (x2, y2) = p
        dy = (y2 - y1) // 2
        return f"M{x1} {y1}C{x1} {y1 + dy} {x2} {y2 - dy} {x2} {y2}"
    return "M" + "L".join(f"{x} {y}" for x, y in p)


def _edge(routed: RoutedEdge, prefix: str) -> str:
    kind = routed.edge.kind
    name, colour, dash = _EDGE_STYLE[kind]
    css = f"edge edge-{kind.value}" + (" edge-back" if routed.back else "")
    dashes = f' stroke-dasharray="{dash}"' if dash else ""
    return (
        f'<path class="{css}" d="{_path(routed)}" stroke="{colour}" stroke-width="1.5"{dashes} '
        f'marker-end="url(#{prefix}-arrow-{name})"/>'
    )


def _label_of(edge: Edge) -> str:
    return edge.label or _KIND_LABEL.get(edge.kind, "")


def _edge_label(routed: RoutedEdge, placed: list[tuple[int, int, int, int]]) -> str:
    text = _clip(_label_of(routed.edge), 200, 6.4)
    _, colour, _ = _EDGE_STYLE[routed.edge.kind]
    x, y = routed.label_at
    w = int(len(text) * 6.4) + 8
    # Nudge the label up or down, a little further each time, until it overlaps no label placed before it.
    for shift in (0, 17, -17, 34, -34, 51, -51):
        box = (x - w // 2, y + shift - 8, x + w // 2, y + shift + 8)
        if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in placed):
            y += shift
            break
    placed.append((x - w // 2, y - 8, x + w // 2, y + 8))
    return (
        f'<g class="edge-label"><rect x="{x - w // 2}" y="{y - 8}" width="{w}" height="16" rx="3" fill="#ffffff" '
        f'fill-opacity="0.92"/><text x="{x}" y="{y + 4}" text-anchor="middle" fill="{colour}">{_text(text)}</text></g>'
    )


def describe(pipeline: Pipeline, edges: tuple[RoutedEdge, ...]) -> str:
    """The graph in words, for screen readers: one sentence per step."""
    moves: dict[str, list[str]] = {}
    for routed in edges:
        edge = routed.edge
        target = "the end of the run" if edge.target == END else edge.target
        phrase = {
            EdgeKind.COMPLETE: f"then {target}",
            EdgeKind.END: "then the run ends",
            EdgeKind.GOTO: f"on {edge.label} goes to {target}",
            EdgeKind.RETRY: f"on {edge.label} runs again",
            EdgeKind.CONTINUE: f"on {edge.label} continues the loop of {target}",
            EdgeKind.EACH: f"after each item goes to {target}",
            EdgeKind.NEXT_ITEM: "runs once per item",
            EdgeKind.ALL_DONE: f"when all items are done goes to {target}",
        }[edge.kind]
        moves.setdefault(edge.source, []).append(phrase)
    sentences = []
    for step in _first_by_id(pipeline).values():
        what = f"{step.id}, run by {step.agent or 'no agent'}" + (", loops over " + step.loop.over if step.loop else "")
        sentences.append(f"{what}: {'; '.join(moves.get(step.id, ['then nothing']))}.")
    return " ".join(sentences)
