"""A swarm drawn on the server: the DAG (layered, left to right) and the timeline (a Gantt chart), as SVG.

Pure: tasks in, markup out (every text escaped; task keys are checked at validation, titles are not). Each
task's box and bar carry ``data-key`` and ``data-status``; the page's script only changes ``data-status`` as
events arrive, and the stylesheet colours by it, so the drawing never needs to be redrawn in the browser.

The DAG reads at 100+ tasks: one column per layer (a task's layer is one more than its deepest dependency),
tasks in a column ordered by the mean row of their dependencies (fewer crossings), small fixed-size boxes with
the key and the title clipped to fit, edges as light curves from a dependency's right to a dependent's left.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

BOX_W, BOX_H = 172, 30
GAP_X, GAP_Y = 56, 8
MARGIN = 12
CHAR_W = 6.6  # an estimate of the 12px label font's advance; the text is clipped to the box anyway

ROW_H, BAR_H = 16, 11
LABEL_W = 132
CHART_W = 720


@dataclass(frozen=True)
class Node:
    key: str
    title: str
    status: str
    level: int
    dependencies: tuple[str, ...]
    started_at: datetime | None = None
    finished_at: datetime | None = None


def _text(value: str) -> str:
    return html.escape(value, quote=False)


def _attr(value: str) -> str:
    return html.escape(value, quote=True)


def _clip(value: str, width: float) -> str:
    room = max(1, int(width / CHAR_W))
    return value if len(value) <= room else value[: room - 1] + "…"


def place(nodes: Sequence[Node]) -> dict[str, tuple[int, int]]:
    """(column, row) of each task: its layer, and its place in the layer by the mean row of its dependencies."""
    columns: dict[int, list[Node]] = {}
    for node in nodes:
        columns.setdefault(node.level, []).append(node)
    row: dict[str, float] = {}
    spot: dict[str, tuple[int, int]] = {}
    for level in sorted(columns):
        members = columns[level]
        if level > 0:
            members.sort(key=lambda n: sum(row[d] for d in n.dependencies if d in row) / max(1, len(n.dependencies)))
        for index, node in enumerate(members):
            row[node.key] = index
            spot[node.key] = (level, index)
    return spot


def dag_svg(nodes: Sequence[Node], *, link: str = "") -> str:
    """The dependency graph; ``link``: the URL prefix of a task's page (``…/tasks/``), or "" for no links."""
    if not nodes:
        return ""
    spot = place(nodes)
    columns = 1 + max(c for c, _ in spot.values())
    rows = 1 + max(r for _, r in spot.values())
    width = 2 * MARGIN + columns * BOX_W + (columns - 1) * GAP_X
    height = 2 * MARGIN + rows * BOX_H + (rows - 1) * GAP_Y

    def corner(key: str) -> tuple[int, int]:
        column, row = spot[key]
        return MARGIN + column * (BOX_W + GAP_X), MARGIN + row * (BOX_H + GAP_Y)

    edges: list[str] = []
    for node in nodes:
        x2, y2 = corner(node.key)
        for dep in node.dependencies:
            if dep not in spot:
                continue
            x1, y1 = corner(dep)
            ax, ay, bx, by = x1 + BOX_W, y1 + BOX_H // 2, x2, y2 + BOX_H // 2
            bend = max(24, (bx - ax) // 2)
            edges.append(
                f'<path class="dag-edge" data-from="{_attr(dep)}" data-to="{_attr(node.key)}" '
                f'd="M{ax} {ay} C{ax + bend} {ay} {bx - bend} {by} {bx} {by}"/>'
            )
    boxes: list[str] = []
    for node in nodes:
        x, y = corner(node.key)
        label = _clip(f"{node.key} · {node.title}" if node.title else node.key, BOX_W - 20)
        shape = (
            f'<rect class="dag-box" x="{x}" y="{y}" width="{BOX_W}" height="{BOX_H}" rx="6"/>'
            f'<circle class="dag-dot" cx="{x + 11}" cy="{y + BOX_H // 2}" r="4"/>'
            f'<text class="dag-label" x="{x + 20}" y="{y + BOX_H // 2 + 4}">{_text(label)}</text>'
            f"<title>{_text(node.key)}: {_text(node.title)} ({_text(node.status)})</title>"
        )
        if link:
            shape = f'<a href="{_attr(link + node.key)}">{shape}</a>'
        boxes.append(f'<g class="dag-task" data-key="{_attr(node.key)}" data-status="{_attr(node.status)}">{shape}</g>')
    levels = columns
    return (
        f'<svg class="swarm-dag" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" '
        # With links inside it is a group of links, not an image (axe: no interactive content inside role=img).
        f'width="{width}" height="{height}" role="{"group" if link else "img"}" aria-labelledby="dag-title">'
        f'<title id="dag-title">Dependency graph: {len(nodes)} tasks in {levels} layers</title>'
        f'<g class="dag-edges">{"".join(edges)}</g><g class="dag-boxes">{"".join(boxes)}</g></svg>'
    )


def _ticks(span: float) -> list[float]:
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200):
        if span / step <= 8:
            return [i * step for i in range(int(span // step) + 1)]
    return [0.0, span]


def _seconds(value: float) -> str:
    if value >= 3600:
        return f"{value / 3600:g} h"
    if value >= 60:
        return f"{value / 60:g} min"
    return f"{value:g} s"


def gantt_svg(nodes: Sequence[Node], *, start: datetime, now: datetime) -> str:
    """One bar per task that has started, from its start to its end (or now), in the order they started."""
    started = sorted((n for n in nodes if n.started_at is not None), key=lambda n: (n.started_at, n.key))
    if not started:
        return ""
    ends = [n.finished_at or now for n in started]
    span = max(1.0, max((end - start).total_seconds() for end in ends))
    plot = CHART_W - LABEL_W - MARGIN
    top = 22
    height = top + len(started) * ROW_H + MARGIN

    def x_of(moment: datetime) -> float:
        return LABEL_W + plot * max(0.0, (moment - start).total_seconds()) / span

    parts: list[str] = []
    for tick in _ticks(span):
        x = LABEL_W + plot * tick / span
        parts.append(
            f'<line class="gantt-tick" x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{height - MARGIN}"/>'
            f'<text class="gantt-axis" x="{x:.1f}" y="{top - 8}">{_seconds(tick)}</text>'
        )
    for index, (node, end) in enumerate(zip(started, ends, strict=True)):
        assert node.started_at is not None
        y = top + index * ROW_H
        x1, x2 = x_of(node.started_at), x_of(end)
        seconds = (end - node.started_at).total_seconds()
        label = _text(_clip(node.key, LABEL_W - 12))
        parts.append(
            f'<g class="gantt-row" data-key="{_attr(node.key)}" data-status="{_attr(node.status)}">'
            f'<text class="gantt-label" x="{LABEL_W - 6}" y="{y + BAR_H - 1}">{label}</text>'
            f'<rect class="gantt-bar" x="{x1:.1f}" y="{y}" width="{max(2.0, x2 - x1):.1f}" height="{BAR_H}" rx="2"/>'
            f"<title>{_text(node.key)}: {_text(node.status)}, {seconds:.1f} s</title></g>"
        )
    return (
        f'<svg class="swarm-gantt" xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {CHART_W} {height}" '
        f'width="{CHART_W}" height="{height}" role="img" aria-labelledby="gantt-title">'
        f'<title id="gantt-title">Timeline: {len(started)} tasks over {_seconds(round(span, 1))}</title>'
        f"{''.join(parts)}</svg>"
    )
