"""Usage charts as server-rendered SVG: spend by day (bars stacked by model), by model and by agent.

No script and no chart library: each chart is an ``<svg>`` with ``role="img"``, a ``<title>`` and a ``<desc>``
that says the numbers in words, axes with labelled ticks, and a legend. Every label is XML-escaped; there is no
``<style>`` and no ``style`` attribute (the Content-Security-Policy forbids them), only presentation attributes.
The ``viewBox`` with ``width="100%"`` lets a chart shrink to a phone's width.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import ROUND_UP, Decimal
from xml.sax.saxutils import escape, quoteattr

from markupsafe import Markup

from app.llm.catalogue import money
from app.llm.usage import Group, Summary

_NOT_XML = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
_FONT = "ui-sans-serif, system-ui, -apple-system, 'Segoe UI', sans-serif"
PALETTE = ("#2563eb", "#16a34a", "#d97706", "#7c3aed", "#db2777", "#0891b2", "#64748b")
OTHER = "other models"
MAX_SERIES = 6
MAX_ROWS = 10


def _text(value: str) -> str:
    return escape(_NOT_XML.sub("", value))


def _attr(value: str) -> str:
    return quoteattr(_NOT_XML.sub("", value))


def _clip(value: str, room: int) -> str:
    return value if len(value) <= room else value[: room - 1] + "…"


def _nice_max(value: Decimal) -> Decimal:
    """A round top for an axis at or above ``value`` (1, 2, 2.5 or 5 times a power of ten)."""
    if value <= 0:
        return Decimal(1)
    exponent = value.adjusted()
    for step in (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10)):
        top = step.scaleb(exponent)
        if top >= value:
            return top
    return Decimal(10).scaleb(exponent)


def _open(kind: str, title: str, desc: str, width: int, height: int, chart_id: str) -> list[str]:
    return [
        f'<svg xmlns="http://www.w3.org/2000/svg" class="usage-chart {kind}" role="img" width="100%" '
        f'viewBox="0 0 {width} {height}" preserveAspectRatio="xMinYMin meet" aria-labelledby="{chart_id}-title '
        f'{chart_id}-desc" font-family={_attr(_FONT)} font-size="12">',
        f'<title id="{chart_id}-title">{_text(title)}</title>',
        f'<desc id="{chart_id}-desc">{_text(desc)}</desc>',
    ]


def daily_chart(summary: Summary, chart_id: str = "usage-by-day") -> Markup:
    """Spend per day over the summary's range, each bar stacked by model (the top models, then the rest)."""
    series = [group.key for group in summary.by_model if group.cost > 0][:MAX_SERIES]
    others = any(group.cost > 0 for group in summary.by_model[MAX_SERIES:])
    names = series + ([OTHER] if others else [])
    days = summary.by_day
    width, height = 760, 300
    left, right, top, bottom = 64, 12, 16, 78
    plot_w, plot_h = width - left - right, height - top - bottom
    peak = max((group.cost for group in days), default=Decimal(0))
    axis_top = _nice_max(peak)
    slot = plot_w / max(len(days), 1)
    bar = max(min(slot * 0.7, 28), 1.5)
    spent = [f"{group.key}: {money(group.cost)} in {group.calls} calls" for group in days if group.calls]
    desc = f"Spend per day from {summary.start} to {summary.end}, {money(summary.total.cost)} in all. " + (
        "; ".join(spent) if spent else "No calls in this period."
    )
    out = _open("by-day", f"LLM spend per day, {summary.start} to {summary.end}", desc, width, height, chart_id)
    # Axes and grid: four steps up the cost axis.
    for step in range(5):
        value = axis_top * step / 4
        y = top + plot_h - plot_h * step / 4
        out.append(f'<line x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}" stroke="#e2e8f0"/>')
        out.append(
            f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end" fill="#475569">{_text(money(value))}</text>'
        )
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{top + plot_h}" stroke="#475569"/>')
    out.append(f'<line x1="{left}" y1="{top + plot_h}" x2="{width - right}" y2="{top + plot_h}" stroke="#475569"/>')
    label_every = max(1, -(-len(days) // 10))
    for index, group in enumerate(days):
        x = left + slot * index + (slot - bar) / 2
        y = top + plot_h
        stacks = summary.day_model.get(group.key, {})
        parts = [(name, stacks.get(name, Decimal(0))) for name in series]
        if others:
            parts.append((OTHER, sum((v for k, v in stacks.items() if k not in series), Decimal(0))))
        for position, (name, value) in enumerate(parts):
            if value <= 0:
                continue
            h = float(value / axis_top) * plot_h
            y -= h
            colour = PALETTE[position % len(PALETTE)]
            out.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{max(h, 0.5):.1f}" fill="{colour}">'
                f"<title>{_text(f'{group.key}, {name}: {money(value)}')}</title></rect>"
            )
        if index % label_every == 0:
            label = date.fromisoformat(group.key).strftime("%b %d")
            cx = x + bar / 2
            out.append(
                f'<text x="{cx:.1f}" y="{top + plot_h + 14}" text-anchor="middle" fill="#475569">{_text(label)}</text>'
            )
    middle = left + plot_w / 2
    out.append(f'<text x="{middle:.0f}" y="{top + plot_h + 32}" text-anchor="middle" fill="#1e293b">Day (UTC)</text>')
    out.append(
        f'<text x="14" y="{top + plot_h / 2:.0f}" text-anchor="middle" fill="#1e293b" '
        f'transform="rotate(-90 14 {top + plot_h / 2:.0f})">Spend (USD)</text>'
    )
    legend_y = height - 22
    x = float(left)
    for position, name in enumerate(names):
        colour = PALETTE[position % len(PALETTE)]
        shown = _clip(name, 24)
        out.append(f'<rect x="{x:.1f}" y="{legend_y - 9}" width="10" height="10" fill="{colour}"/>')
        out.append(f'<text x="{x + 14:.1f}" y="{legend_y}" fill="#1e293b">{_text(shown)}</text>')
        x += 14 + 7 * len(shown) + 16
        if x > width - 120:
            break
    out.append("</svg>")
    return Markup("".join(out))


def ranking_chart(groups: list[Group], what: str, chart_id: str) -> Markup:
    """Horizontal bars: spend by ``what`` (model or agent), the largest first, at most ten rows."""
    rows = groups[:MAX_ROWS]
    width = 760
    row_h, top, left, right = 26, 12, 220, 120
    height = top * 2 + row_h * max(len(rows), 1) + 24
    plot_w = width - left - right
    peak = max((group.cost for group in rows), default=Decimal(0))
    axis_top = _nice_max(peak)
    listed = "; ".join(f"{group.key}: {money(group.cost)} in {group.calls} calls" for group in rows)
    desc = f"Spend by {what}, largest first. " + (listed or "No calls in this period.")
    out = _open(f"by-{what}", f"LLM spend by {what}", desc, width, height, chart_id)
    base_y = top + row_h * max(len(rows), 1)
    out.append(f'<line x1="{left}" y1="{top}" x2="{left}" y2="{base_y}" stroke="#475569"/>')
    out.append(f'<line x1="{left}" y1="{base_y}" x2="{left + plot_w}" y2="{base_y}" stroke="#475569"/>')
    for step in range(5):
        value = axis_top * step / 4
        x = left + plot_w * step / 4
        out.append(f'<line x1="{x:.1f}" y1="{base_y}" x2="{x:.1f}" y2="{base_y + 4}" stroke="#475569"/>')
        out.append(
            f'<text x="{x:.1f}" y="{base_y + 16}" text-anchor="middle" fill="#475569">{_text(money(value))}</text>'
        )
    if not rows:
        out.append(f'<text x="{left + 8}" y="{top + 17}" fill="#64748b">No calls in this period.</text>')
    for index, group in enumerate(rows):
        y = top + row_h * index
        w = float(group.cost / axis_top) * plot_w if axis_top else 0
        colour = PALETTE[index % len(PALETTE)]
        out.append(
            f'<text x="{left - 8}" y="{y + 17}" text-anchor="end" fill="#1e293b">{_text(_clip(group.key, 30))}</text>'
        )
        out.append(
            f'<rect x="{left}" y="{y + 5}" width="{max(w, 0.5):.1f}" height="{row_h - 10}" fill="{colour}">'
            f"<title>{_text(f'{group.key}: {money(group.cost)}, {group.calls} calls')}</title></rect>"
        )
        approximate = " (approx.)" if group.approximate else ""
        out.append(
            f'<text x="{left + w + 6:.1f}" y="{y + 17}" fill="#1e293b">{_text(money(group.cost) + approximate)}</text>'
        )
    out.append("</svg>")
    return Markup("".join(out))


def percent(part: Decimal, whole: Decimal) -> int:
    """How much of ``whole`` ``part`` is, in whole percent (rounded up: 80.1 % shows as 81)."""
    if whole <= 0:
        return 100
    return int((part * 100 / whole).to_integral_value(rounding=ROUND_UP))
