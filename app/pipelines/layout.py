"""A layered (Sugiyama-style) layout of the step graph, top to bottom, in whole pixels and deterministic.

1. Back edges are found by a depth-first walk from the first step (successors in YAML order); removing them
   (and self-loops) leaves a DAG.
2. Layers by longest path in that DAG, with one extra rule: whatever a loop goes to when its items run out
   is placed below the loop's body, so a loop reads as a block.
3. Within a layer, boxes are ordered by the barycenter of their neighbours (a few sweeps down and up,
   ties broken by YAML order) to cut crossings.
4. Edges leave a box at its bottom and enter at its top. An edge to the next layer is one curve. A longer
   forward edge runs down a lane on the left, a back edge up a lane on the right (one lane each), with
   horizontal runs in the gaps between layers, so no edge crosses a box. Self-loops sit on a box's right.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from app.pipelines.graph import END, Edge, EdgeKind, enclosing_loops, reachable, step_edges, successors
from app.pipelines.spec import Pipeline

BOX_H = 48
GAP_Y = 72
GAP_X = 56
LANE = 14
MARGIN = 24
MIN_W, MAX_W = 132, 236
CHAR_W = 7.4  # average advance of the 13px bold label font; an estimate, the text is clipped to the box anyway
END_W = 72

Point = tuple[int, int]


@dataclass(frozen=True, slots=True)
class Box:
    id: str
    x: int
    y: int
    w: int
    h: int
    layer: int
    is_end: bool = False


@dataclass(frozen=True, slots=True)
class RoutedEdge:
    edge: Edge
    points: tuple[Point, ...]  # a polyline; two points with ``curve`` for a smooth one-layer edge
    label_at: Point
    curve: bool = False
    back: bool = False


@dataclass(frozen=True, slots=True)
class Layout:
    boxes: tuple[Box, ...]
    edges: tuple[RoutedEdge, ...]
    width: int
    height: int
    box_width: int


def layout(pipeline: Pipeline) -> Layout:
    ids = list(dict.fromkeys(s.id for s in pipeline.steps if s.id))
    edges = [e for e in step_edges(pipeline) if e.source in ids]
    nodes = ids + ([END] if any(e.target == END for e in edges) else [])
    back = _back_edges(nodes, edges)
    forward = [e for e in edges if e not in back and e.source != e.target]
    layers = _layers(nodes, forward, _loop_exit_constraints(pipeline, edges))
    rows = _order(nodes, layers, forward)
    # One width for every box (columns line up): the longest id, or agent line in its smaller font.
    agent_lines = [len(s.agent) + (7 if s.is_loop else 0) for s in pipeline.steps]
    longest = max([len(i) for i in ids] + [int(n * 0.85) for n in agent_lines] + [4])
    box_w = max(MIN_W, min(MAX_W, int(longest * CHAR_W) + 28))
    widest = max((len(row) for row in rows), default=1)
    lanes = _assign_lanes(edges, back, layers)
    lanes_left = 1 + max((k for e, k in lanes.items() if e not in back), default=-1)
    lanes_right = 1 + max((k for e, k in lanes.items() if e in back), default=-1)
    left = MARGIN + lanes_left * LANE + (GAP_X // 2 if lanes_left else 0)
    content_w = widest * box_w + (widest - 1) * GAP_X
    boxes: dict[str, Box] = {}
    for layer, row in enumerate(rows):
        row_w = len(row) * box_w + (len(row) - 1) * GAP_X
        x = left + (content_w - row_w) // 2
        y = MARGIN + layer * (BOX_H + GAP_Y)
        for node in row:
            is_end = node == END
            w = END_W if is_end else box_w
            boxes[node] = Box(node, x + (box_w - w) // 2, y, w, BOX_H, layer, is_end)
            x += box_w + GAP_X
    right = left + content_w + GAP_X // 2 + 40  # room for self-loops and their labels
    routed = _route(edges, boxes, back, layers, lanes, left, right)
    width = right + lanes_right * LANE + MARGIN
    height = MARGIN * 2 + len(rows) * BOX_H + max(len(rows) - 1, 0) * GAP_Y
    ordered = tuple(boxes[n] for row in rows for n in row)
    return Layout(ordered, routed, width, height, box_w)


def _back_edges(nodes: Sequence[str], edges: Sequence[Edge]) -> set[Edge]:
    out: dict[str, list[Edge]] = {}
    for edge in edges:
        out.setdefault(edge.source, []).append(edge)
    state: dict[str, int] = {}  # 1: on the walk's stack, 2: done
    back: set[Edge] = set()
    for root in nodes:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, 0)]
        while stack:
            node, i = stack.pop()
            children = out.get(node, [])
            if i == len(children):
                state[node] = 2
                continue
            stack.append((node, i + 1))
            edge = children[i]
            if edge.target == node:
                continue
            if state.get(edge.target) == 1:
                back.add(edge)
            elif edge.target not in state:
                state[edge.target] = 1
                stack.append((edge.target, 0))
    return back


def _loop_exit_constraints(pipeline: Pipeline, edges: Sequence[Edge]) -> list[tuple[str, str]]:
    """(body step, loop exit target) pairs: the exit is drawn below every step of the loop's body."""
    loops = enclosing_loops(pipeline, edges)
    pairs: list[tuple[str, str]] = []
    for edge in edges:
        if edge.kind in (EdgeKind.ALL_DONE, EdgeKind.END) and pipeline.step(edge.source) is not None:
            step = pipeline.step(edge.source)
            if step is not None and step.is_loop:
                pairs.extend((member, edge.target) for member, owners in loops.items() if edge.source in owners)
    return pairs


def _layers(nodes: Sequence[str], forward: Sequence[Edge], extra: Sequence[tuple[str, str]]) -> dict[str, int]:
    succ = successors(forward)
    for source, target in extra:
        # Only when it keeps the graph acyclic: the target must not already lead to the source.
        if source != target and source not in reachable([target], succ) and target not in succ.get(source, []):
            succ.setdefault(source, []).append(target)
    indegree = dict.fromkeys(nodes, 0)
    for targets in succ.values():
        for target in targets:
            indegree[target] += 1
    layer = dict.fromkeys(nodes, 0)
    ready = [n for n in nodes if indegree[n] == 0]
    position = {n: i for i, n in enumerate(nodes)}
    while ready:
        ready.sort(key=position.__getitem__)
        node = ready.pop(0)
        for target in succ.get(node, []):
            layer[target] = max(layer[target], layer[node] + 1)
            indegree[target] -= 1
            if indegree[target] == 0:
                ready.append(target)
    if END in layer:  # the end sits alone below everything
        layer[END] = max((v for n, v in layer.items() if n != END), default=-1) + 1
    return layer


def _order(nodes: Sequence[str], layers: dict[str, int], forward: Sequence[Edge]) -> list[list[str]]:
    depth = max(layers.values(), default=0) + 1
    rows: list[list[str]] = [[] for _ in range(depth)]
    for node in nodes:
        rows[layers[node]].append(node)
    ups = successors(Edge(e.target, e.source, e.kind) for e in forward)
    downs = successors(forward)
    position = {n: i for i, n in enumerate(nodes)}
    for sweep in range(4):
        neighbours = ups if sweep % 2 == 0 else downs
        sequence = range(1, depth) if sweep % 2 == 0 else range(depth - 2, -1, -1)
        slot = {n: i for row in rows for i, n in enumerate(row)}
        for index in sequence:
            row = rows[index]
            keys = {}
            for i, node in enumerate(row):
                near = [slot[m] for m in neighbours.get(node, []) if m in slot]
                keys[node] = (sum(near) / len(near) if near else float(i), position[node])
            row.sort(key=keys.__getitem__)
            slot.update((n, i) for i, n in enumerate(row))
    return rows


def _assign_lanes(edges: Sequence[Edge], back: set[Edge], layers: dict[str, int]) -> dict[Edge, int]:
    """A lane for each edge that skips layers: left for forward edges, right for back edges.

    Shorter edges first, each in the innermost lane free over its layers, so lanes nest instead of crossing
    and edges over separate stretches of the pipeline share a lane (a long pipeline stays narrow).
    """
    lanes: dict[Edge, int] = {}
    order = {edge: i for i, edge in enumerate(edges)}
    for is_back in (False, True):
        group = [
            e
            for e in edges
            if e.source != e.target and (e in back) == is_back and (is_back or layers[e.target] - layers[e.source] > 1)
        ]
        group.sort(key=lambda e: (abs(layers[e.target] - layers[e.source]), order[e]))
        taken: list[list[tuple[int, int]]] = []
        for edge in group:
            low, high = sorted((layers[edge.source], layers[edge.target]))
            k = next(
                (i for i, spans in enumerate(taken) if all(high < a or b < low for a, b in spans)),
                len(taken),
            )
            if k == len(taken):
                taken.append([])
            taken[k].append((low, high))
            lanes[edge] = k
    return lanes


def _route(
    edges: Sequence[Edge],
    boxes: dict[str, Box],
    back: set[Edge],
    layers: dict[str, int],
    lane: dict[Edge, int],
    left: int,
    right: int,
) -> tuple[RoutedEdge, ...]:
    def side(edge: Edge) -> int:
        """0: runs down a left lane, 1: a curve to the next layer, 2: up a right lane (a back edge)."""
        if edge in back:
            return 2
        return 1 if layers[edge.target] - layers[edge.source] == 1 else 0

    moving = [e for e in edges if e.source != e.target]
    order = {edge: i for i, edge in enumerate(moving)}

    def port_key(edge: Edge, toward: str) -> tuple[int, int, int]:
        # Left-lane edges on the left (inner lane outermost port), curves by the other end's x, right-lane
        # edges on the right (inner lane rightmost): no lane edge crosses another at a box.
        if side(edge) == 0:
            return (0, lane[edge], 0)
        if side(edge) == 2:
            return (2, -lane[edge], 0)
        return (1, boxes[getattr(edge, toward)].x, order[edge])

    outs: dict[str, list[Edge]] = {}
    ins: dict[str, list[Edge]] = {}
    for edge in moving:
        outs.setdefault(edge.source, []).append(edge)
        ins.setdefault(edge.target, []).append(edge)

    ports: dict[tuple[Edge, str], int] = {}

    def port(box: Box, group: list[Edge], edge: Edge, toward: str) -> int:
        if (edge, toward) not in ports:
            ordered = sorted(group, key=lambda e: port_key(e, toward))
            ports.update(((e, toward), box.x + box.w * (i + 1) // (len(ordered) + 1)) for i, e in enumerate(ordered))
        return ports[(edge, toward)]

    routed: list[RoutedEdge] = []
    self_loops: dict[str, int] = {}
    for edge in edges:
        src = boxes[edge.source]
        if edge.source == edge.target:
            k = self_loops.get(edge.source, 0)
            self_loops[edge.source] = k + 1
            r = 22 + 12 * k
            x, y = src.x + src.w, src.y + src.h // 2
            loop_points = ((x, y - 8), (x + r, y - 8 - r // 2), (x + r, y + 8 + r // 2), (x, y + 8))
            routed.append(RoutedEdge(edge, loop_points, (x + r + 4, y - 8 - r // 2), curve=True))
            continue
        dst = boxes[edge.target]
        start = (port(src, outs[edge.source], edge, "target"), src.y + src.h)
        end = (port(dst, ins[edge.target], edge, "source"), dst.y)
        if side(edge) == 1:
            mid = ((start[0] + end[0]) // 2, (start[1] + end[1]) // 2)
            routed.append(RoutedEdge(edge, (start, end), mid, curve=True))
            continue
        k = lane[edge]
        is_back = side(edge) == 2
        lane_x = right + k * LANE if is_back else left - GAP_X // 2 - k * LANE
        # Inner lanes run nearest the boxes; the offset cycles so many lanes still fit in one gap.
        offset = 12 + 10 * (k % 5)
        below = src.y + src.h + offset
        above = dst.y - offset
        points = (start, (start[0], below), (lane_x, below), (lane_x, above), (end[0], above), end)
        # The label sits on the run toward the lane, next to the lane: clear of the curves between boxes.
        reach = (len(edge.label or edge.kind.value) * 13) // 4 + 8
        label_x = lane_x - reach if is_back else lane_x + reach
        routed.append(RoutedEdge(edge, points, (label_x, below), back=is_back))
    return tuple(routed)
