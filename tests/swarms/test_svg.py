"""The swarm drawings: every task drawn once, layers left to right, text escaped, readable at 150 tasks."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

from app.swarms.svg import BOX_H, BOX_W, Node, dag_svg, gantt_svg, place


def wide(n: int) -> list[Node]:
    nodes = [Node("root", "Root", "completed", 0, ())]
    nodes += [Node(f"w{i}", f"Worker {i}", "running", 1, ("root",)) for i in range(n)]
    nodes.append(Node("sink", "Sink", "pending", 2, tuple(f"w{i}" for i in range(n))))
    return nodes


def test_a_diamond_in_layers_with_every_edge() -> None:
    nodes = [
        Node("a", "A", "completed", 0, ()),
        Node("b", "B", "running", 1, ("a",)),
        Node("c", "C", "failed", 1, ("a",)),
        Node("d", "<script>alert(1)</script>", "skipped", 2, ("b", "c")),
    ]
    svg = dag_svg(nodes, link="/w/x/swarms/s/tasks/")
    root = ET.fromstring(svg)  # well-formed
    assert len(re.findall(r'class="dag-task"', svg)) == 4 and len(re.findall(r'class="dag-edge"', svg)) == 4
    assert 'data-key="c" data-status="failed"' in svg and 'href="/w/x/swarms/s/tasks/d"' in svg
    assert "<script>" not in svg and "&lt;script&gt;" in svg
    assert place(nodes) == {"a": (0, 0), "b": (1, 0), "c": (1, 1), "d": (2, 0)}
    assert root.get("role") == "group"  # links inside: a group of links, not an image
    assert ET.fromstring(dag_svg(nodes)).get("role") == "img"


def test_150_tasks_stay_readable() -> None:
    svg = dag_svg(wide(150))
    root = ET.fromstring(svg)
    # Three columns of fixed-size boxes: the drawing grows downwards, never shrinks its labels.
    assert int(root.get("width", 0)) < 3 * BOX_W + 200
    assert int(root.get("height", 0)) >= 150 * BOX_H
    assert svg.count('class="dag-task"') == 152 and "150 tasks" not in svg and "152 tasks in 3 layers" in svg


def test_the_timeline_has_a_bar_per_started_task() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    nodes = [
        Node("a", "A", "completed", 0, (), start, start + timedelta(seconds=30)),
        Node("b", "B", "running", 1, ("a",), start + timedelta(seconds=30), None),
        Node("c", "C", "pending", 1, ("a",)),
    ]
    svg = gantt_svg(nodes, start=start, now=start + timedelta(seconds=90))
    ET.fromstring(svg)
    assert svg.count('class="gantt-row"') == 2 and 'data-key="b" data-status="running"' in svg
    assert "over 1.5 min" in svg
    assert gantt_svg(nodes[2:], start=start, now=start) == ""
