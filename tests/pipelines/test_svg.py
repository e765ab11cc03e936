"""The step graph SVG: well-formed, escaped, deterministic, layered, accessible, colourable by status."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET
from pathlib import Path

from app.pipelines import load_pipeline, load_valid_pipeline, render_svg
from app.pipelines.layout import layout
from app.pipelines.starters import load_starter, starter_ids

SVG = "{http://www.w3.org/2000/svg}"
FIXTURES = Path(__file__).parent / "fixtures"


def _parse(svg: str) -> ET.Element:
    return ET.fromstring(svg)  # the stdlib parser: raises on anything not well-formed


def _boxes(root: ET.Element) -> dict[str, tuple[int, int, int, int]]:
    found = {}
    for group in root.iter(f"{SVG}g"):
        step = group.get("data-step")
        if step is not None:
            rect = group.find(f"{SVG}rect")
            assert rect is not None
            found[step] = tuple(int(rect.get(k, "0")) for k in ("x", "y", "width", "height"))
    return found  # type: ignore[return-value]


def test_every_starter_renders_well_formed_and_accessible() -> None:
    for starter in starter_ids():
        pipeline = load_starter(starter)
        root = _parse(render_svg(pipeline))
        assert root.tag == f"{SVG}svg"
        assert root.get("role") == "img"
        assert root.get("aria-label") == f"Step graph of pipeline {pipeline.name}: {len(pipeline.steps)} steps"
        title = root.find(f"{SVG}title")
        assert title is not None and title.text == f"Step graph of pipeline {pipeline.name}"
        desc = root.find(f"{SVG}desc")
        assert desc is not None and root.get("aria-describedby") == desc.get("id")
        assert set(_boxes(root)) == {s.id for s in pipeline.steps}
        # Sized to its content: a viewBox matching width and height.
        assert root.get("viewBox") == f"0 0 {root.get('width')} {root.get('height')}"


def test_the_description_says_where_each_step_goes() -> None:
    root = _parse(render_svg(load_starter("engineering")))
    desc = root.find(f"{SVG}desc")
    assert desc is not None and desc.text is not None
    assert "REVIEW, run by architect: on APPROVED goes to TEST; on CHANGES_REQUESTED goes to IMPLEMENT." in desc.text
    assert (
        "TEST, run by test-engineer: on PASS continues the loop of IMPLEMENT; on FAIL goes to IMPLEMENT." in desc.text
    )
    assert (
        "IMPLEMENT, run by software-engineer, loops over task_list_json: after each item goes to REVIEW;" in desc.text
    )


def test_deterministic() -> None:
    text = (FIXTURES / "djinnbot_format.yml").read_text()
    first = render_svg(load_valid_pipeline(text), {"AUDIT": "completed"})
    assert first == render_svg(load_valid_pipeline(text), {"AUDIT": "completed"})


def test_layered_top_to_bottom_with_back_edges_routed_around() -> None:
    pipeline = load_starter("engineering")
    root = _parse(render_svg(pipeline))
    boxes = _boxes(root)
    order = ["SPEC", "DESIGN", "UX", "IMPLEMENT", "REVIEW", "TEST", "DEPLOY"]
    ys = [boxes[step][1] for step in order]
    assert ys == sorted(ys) and len(set(ys)) == len(ys)  # one step per layer, in flow order
    paths = {(p.get("class") or ""): p for p in root.iter(f"{SVG}path") if "edge" in (p.get("class") or "")}
    classes = " ".join(paths)
    # CHANGES_REQUESTED, TEST's FAIL and continueLoop go back up: routed in lanes right of every box.
    back = [p for c, p in paths.items() if "edge-back" in c]
    assert len([p for p in root.iter(f"{SVG}path") if "edge-back" in (p.get("class") or "")]) == 3
    right_edge = max(x + w for x, _, w, _ in boxes.values())
    for path in back:
        xs = [int(part.split()[0]) for part in (path.get("d") or "").lstrip("M").split("L")]
        assert max(xs) > right_edge
    assert "edge-each" in classes and "edge-all-done" in classes and "edge-continue" in classes
    # Loop edges are dashed; plain onComplete edges are not.
    for path in root.iter(f"{SVG}path"):
        css = path.get("class") or ""
        if "edge-each" in css or "edge-continue" in css:
            assert path.get("stroke-dasharray") == "6 4"
        if "edge-complete" in css:
            assert path.get("stroke-dasharray") is None
    labels = [t.text for t in root.iter(f"{SVG}text")]
    assert {"APPROVED", "CHANGES_REQUESTED", "PASS", "FAIL", "FAILED", "each item", "all done"} <= set(labels)


def test_user_text_is_escaped() -> None:
    text = """
id: x
name: "Evil <script>alert(1)</script> & co"
version: "1"
agents: [{id: "a\\"><script>", name: A}]
steps:
  - id: "<img src=x onerror=alert(1)>"
    agent: "a\\"><script>"
    input: go
    outputs: [v]
    onResult:
      "</text><script>bad()</script>": {goto: "B&B"}
      "\\x07BELL": {goto: "B&B"}
    onComplete: "B&B"
  - id: "B&B"
    agent: "a\\"><script>"
    input: "ok \\x01"
"""
    result = load_pipeline(text)
    assert result.pipeline is not None and not result.ok  # invalid ids, yet the editor still draws it
    svg = render_svg(result.pipeline, {"B&B": 'running" onload="x'})
    assert "<script" not in svg and "<img" not in svg
    root = _parse(svg)
    # Only our own elements and attributes: no script, no image, no event handler smuggled in.
    assert {e.tag.removeprefix(SVG) for e in root.iter()} <= {
        "svg",
        "title",
        "desc",
        "defs",
        "marker",
        "path",
        "g",
        "rect",
        "text",
    }
    assert not [name for e in root.iter() for name in e.attrib if name.lower().startswith("on")]
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert any((t or "").startswith("</text><script>bad()") for t in texts)
    assert "BELL" in texts  # a control character XML cannot hold is dropped
    assert any((t or "").startswith("<img src=x") for t in texts)
    assert root.get("aria-label", "").startswith("Step graph of pipeline Evil <script>alert(1)</script> & co")
    # Status strings become CSS class names made only of safe characters.
    classes = [g.get("class") or "" for g in root.iter(f"{SVG}g") if g.get("data-step") == "B&B"]
    assert classes == ["step status-running-onload-x"]


def test_statuses_colour_the_boxes_by_class_and_attribute() -> None:
    pipeline = load_starter("feature")
    svg = render_svg(pipeline, {"DESIGN": "completed", "IMPLEMENT": "running", "REVIEW": "failed", "TEST": "mystery"})
    root = _parse(svg)
    steps = {g.get("data-step"): g for g in root.iter(f"{SVG}g") if g.get("data-step")}
    assert steps["DESIGN"].get("class") == "step status-completed"
    assert steps["IMPLEMENT"].get("class") == "step status-running"
    assert steps["TEST"].get("class") == "step status-mystery"
    rects = {step: g.find(f"{SVG}rect") for step, g in steps.items()}
    assert rects["DESIGN"] is not None and rects["DESIGN"].get("fill") == "#dcfce7"
    assert rects["IMPLEMENT"] is not None and rects["IMPLEMENT"].get("stroke-width") == "2"
    assert rects["REVIEW"] is not None and rects["REVIEW"].get("stroke") == "#dc2626"
    assert rects["TEST"] is not None and rects["TEST"].get("fill") == "#ffffff"  # unknown: plain
    title = steps["IMPLEMENT"].find(f"{SVG}title")
    assert title is not None and title.text == "IMPLEMENT (agent software-engineer): running"
    # No <style> element and no style attribute: the app's CSP forbids inline styles.
    assert "<style" not in svg and " style=" not in svg


def test_marker_ids_are_prefixed_so_two_graphs_can_share_a_page() -> None:
    pipeline = load_starter("bugfix")
    assert 'id="pg-bugfix-arrow-slate"' in render_svg(pipeline)
    other = render_svg(pipeline, id_prefix="run-42")
    assert 'id="run-42-arrow-slate"' in other and "url(#run-42-arrow-slate)" in other and "pg-bugfix" not in other


def _big_pipeline(count: int) -> str:
    """A long pipeline with review branches every few steps and a loop: the shape of a real 30+ step one."""
    lines = ["id: big", "name: Big", 'version: "1"', "agents: [{id: dev, name: Dev}, {id: qa, name: QA}]", "steps:"]
    lines.append("  - {id: PLAN, agent: dev, input: plan, outputs: [items], onComplete: S1}")
    for i in range(1, count + 1):
        nxt = f"S{i + 1}" if i < count else "WORK"
        if i % 5 == 0:
            lines.append(
                f"  - {{id: S{i}, agent: qa, input: check, outputs: [v{i}], "
                f"onResult: {{REDO: {{goto: S{i - 3}}}, PASS: {{goto: {nxt}}}}}, onComplete: {nxt}}}"
            )
        else:
            lines.append(f"  - {{id: S{i}, agent: dev, input: go, onComplete: {nxt}}}")
    lines.append('  - {id: WORK, agent: dev, input: "{{current_item}}", loop: {over: items, onEachComplete: REVIEW}}')
    lines.append("  - {id: REVIEW, agent: qa, input: r, outputs: [r], onResult: {OK: {continueLoop: true}}}")
    return "\n".join(lines)


def test_readable_for_a_long_pipeline() -> None:
    pipeline = load_valid_pipeline(_big_pipeline(36))
    assert len(pipeline.steps) == 39
    started = time.monotonic()
    svg = render_svg(pipeline)
    assert time.monotonic() - started < 1
    root = _parse(svg)
    boxes = list(_boxes(root).values())
    assert len(boxes) == 39
    # No two boxes overlap, and the drawing stays narrow enough to read (it grows downwards).
    for i, (x1, y1, w1, h1) in enumerate(boxes):
        for x2, y2, w2, h2 in boxes[i + 1 :]:
            assert x1 + w1 <= x2 or x2 + w2 <= x1 or y1 + h1 <= y2 or y2 + h2 <= y1
    assert int(root.get("width", "0")) < 900
    shape = layout(pipeline)
    assert max(b.layer for b in shape.boxes) >= 36  # layered along the flow


def test_one_step_pipeline() -> None:
    pipeline = load_valid_pipeline(
        'id: one\nname: One\nversion: "1"\nagents: [{id: a, name: A}]\nsteps: [{id: S, agent: a, input: x}]'
    )
    root = _parse(render_svg(pipeline))
    assert list(_boxes(root)) == ["S"]
