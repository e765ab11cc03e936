"""The run timeline (server-rendered SVG): a bar per attempt on one time axis, coloured by status through CSS
classes, every label escaped; nothing before a step starts."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from xml.etree import ElementTree

from app.runs.pages.timeline import LABEL_W, WIDTH, render_timeline
from app.runs.views import RunView, StepView

T0 = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def step(seq: int, step_id: str, status: str, start: float | None, end: float | None, **extra: Any) -> StepView:
    values: dict[str, Any] = dict(
        id=f"v{seq}", seq=seq, step_id=step_id, agent_id="agent", via="", loop_item=None, status=status,
        attempt=1, max_retries=2, attempts=[], human_context="", input="", outputs={}, summary="", error="",
        model="demo/demo", input_tokens=0, output_tokens=0, cost=Decimal(0), commit=None, queued_at=T0,
        started_at=T0 + timedelta(seconds=start) if start is not None else None,
        finished_at=T0 + timedelta(seconds=end) if end is not None else None,
    )  # fmt: skip
    values.update(extra)
    return StepView(**values)


def run_of(*steps: StepView) -> RunView:
    return RunView(
        id="r1", pipeline_id="p", pipeline_name="P", pipeline_version=1, pipeline_yaml="", task="t",
        status="running", reason="", outputs={}, created_by_label="", restarted_from=None, created_at=T0,
        started_at=T0, finished_at=None, steps=list(steps),
    )  # fmt: skip


def test_bars_per_attempt_on_one_axis_coloured_by_status() -> None:
    earlier = {
        "attempt": 1,
        "status": "failed",
        "started_at": T0.isoformat(),
        "finished_at": (T0 + timedelta(seconds=10)).isoformat(),
    }
    run = run_of(
        step(1, "<SPEC>", "completed", 0, 20),
        step(
            2,
            "BUILD",
            "completed",
            30,
            50,
            attempt=2,
            attempts=[
                earlier
                | {
                    "started_at": (T0 + timedelta(seconds=20)).isoformat(),
                    "finished_at": (T0 + timedelta(seconds=29)).isoformat(),
                }
            ],
        ),
        step(3, "CHECK", "running", 50, None, loop_item=1),
        step(4, "LATER", "queued", None, None),
    )
    svg = str(render_timeline(run, T0 + timedelta(seconds=100)))
    root = ElementTree.fromstring(svg)  # well-formed XML
    bars = [
        (rect.get("class"), float(rect.get("x") or 0), float(rect.get("width") or 0))
        for rect in root.iter("{http://www.w3.org/2000/svg}rect")
    ]
    assert [cls for cls, _, _ in bars] == [
        "bar status-completed",
        "bar status-failed",
        "bar status-completed",
        "bar status-running",
    ]
    assert bars[0][1] == LABEL_W  # the first start is the origin
    assert abs((bars[3][1] + bars[3][2]) - (WIDTH - 12)) < 0.5  # a running bar ends at "now", the axis' end
    assert bars[1][1] < bars[2][1]  # the failed first attempt before the retry
    assert "&lt;SPEC&gt;" in svg and "<SPEC>" not in svg
    assert "CHECK #2" in svg and "LATER" in svg
    assert re.search(r'aria-label="Step timeline of run r1: 4 step visits over 1 min 40 s"', svg)


def test_nothing_before_a_step_starts() -> None:
    assert str(render_timeline(run_of(step(1, "A", "queued", None, None)), T0)) == ""
