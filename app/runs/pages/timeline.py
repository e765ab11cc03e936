"""A run's step timeline as a server-rendered SVG: a row per step visit, a bar per attempt on a shared time axis,
coloured by status (CSS classes ``bar status-<status>``, so the theme's colours apply; no style attributes under
the Content-Security-Policy). Every label is XML-escaped: step ids and agent ids are the author's text.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from app.runs.views import RunView, StepView

ROW = 26
BAR = 16
LABEL_W = 150
AXIS_H = 22
WIDTH = 720
KNOWN = {"queued", "running", "completed", "failed", "cancelled", "retrying", "paused"}


@dataclass(frozen=True)
class Bar:
    row: int
    start: datetime
    end: datetime
    status: str
    title: str


def _parse(value: object) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str):
        try:
            return datetime.fromisoformat(value)
        except ValueError:
            return None
    return None


def _bars(steps: list[StepView], now: datetime) -> list[Bar]:
    bars: list[Bar] = []
    for row, step in enumerate(steps):
        for earlier in step.attempts:  # earlier attempts of this visit (retries)
            start = _parse(earlier.get("started_at"))
            end = _parse(earlier.get("finished_at")) or start
            if start is not None and end is not None:
                status = str(earlier.get("status", "failed"))
                title = f"{step.step_id} attempt {earlier.get('attempt', '?')}: {status}"
                bars.append(Bar(row, start, end, status, title))
        if step.started_at is not None:
            end = step.finished_at or now
            title = f"{step.step_id} attempt {step.attempt}: {step.status}"
            bars.append(Bar(row, step.started_at, end, step.status, title))
    return bars


def _duration(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s" if seconds >= 10 else f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s" if minutes < 60 else f"{minutes // 60} h {minutes % 60} min"


def render_timeline(run: RunView, now: datetime) -> Markup:
    """The timeline of ``run`` at ``now`` (running bars end there); an empty string before any step ran."""
    steps = run.steps
    bars = _bars(steps, now)
    if not bars:
        return Markup("")
    origin = min(bar.start for bar in bars)
    finish = max(bar.end for bar in bars)
    span = max((finish - origin).total_seconds(), 1.0)
    plot = WIDTH - LABEL_W - 12
    height = AXIS_H + ROW * len(steps) + 6
    scale = plot / span
    label = f"Step timeline of run {run.id}: {len(steps)} step visits over {_duration(span)}"
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="run-timeline" role="img" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" aria-label={quoteattr(label)}>',
        f"<title>{escape(label)}</title>",
    ]
    for tick in range(5):
        x = LABEL_W + plot * tick / 4
        out.append(f'<line class="tick" x1="{x:.1f}" y1="{AXIS_H - 4}" x2="{x:.1f}" y2="{height}"/>')
        anchor = "start" if tick == 0 else "end" if tick == 4 else "middle"
        out.append(
            f'<text class="axis" x="{x:.1f}" y="{AXIS_H - 8}" text-anchor="{anchor}" font-size="11">'
            f"{escape(_duration(span * tick / 4)) if tick else '0 s'}</text>"
        )
    for row, step in enumerate(steps):
        y = AXIS_H + row * ROW
        name = step.step_id + (f" #{step.loop_item + 1}" if step.loop_item is not None else "")
        clipped = name if len(name) <= 20 else name[:19] + "…"
        out.append(
            f'<text class="step-label" x="4" y="{y + BAR - 2}" font-size="12"><title>{escape(name)} '
            f"({escape(step.agent_id)})</title>{escape(clipped)}</text>"
        )
    for bar in bars:
        x = LABEL_W + (bar.start - origin).total_seconds() * scale
        w = max((bar.end - bar.start).total_seconds() * scale, 3.0)
        y = AXIS_H + bar.row * ROW
        status = bar.status if bar.status in KNOWN else "other"
        seconds = (bar.end - bar.start).total_seconds()
        out.append(
            f'<rect class="bar status-{status}" x="{x:.1f}" y="{y}" width="{w:.1f}" height="{BAR}" rx="3">'
            f"<title>{escape(bar.title)} ({escape(_duration(seconds))})</title></rect>"
        )
    out.append("</svg>")
    return Markup("".join(out))
