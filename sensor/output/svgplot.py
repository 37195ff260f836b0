"""Hand-written inline SVG plots for the HTML report: an incident timeline and stacked bars over time.

Plain SVG text, so the report stays one file with no script library and nothing fetched.
Every label is HTML-escaped here: they come from captured traffic and scanned files.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from html import escape

PALETTE = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
MARK_COLORS = {
    "host_rule": "#b07aa1",
    "host_event": "#d4a6c8",
    "staged_file": "#4e79a7",
    "network": "#e15759",
    "flow": "#f28e2b",
}
# Bucket widths tried in turn until the span fits in MAX_BUCKETS bars.
BUCKETS = (1, 10, 60, 300, 900, 3600, 6 * 3600, 86400, 7 * 86400, 30 * 86400)
MAX_BUCKETS = 48
WIDTH, LEFT, RIGHT = 1000, 190, 20
LEGEND_COLUMNS = 5


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def bucket_width(start: float, end: float) -> int:
    """The smallest bucket width that cuts [start, end] into at most MAX_BUCKETS bars."""
    # A capture with a bogus clock (1970) can span decades: then the bars just get wider.
    return next((b for b in BUCKETS if (end - start) / b < MAX_BUCKETS), math.ceil((end - start) / MAX_BUCKETS) + 1)


def clock(ts: float, span: float) -> str:
    """A time label as short as the plotted span allows (UTC)."""
    t = datetime.fromtimestamp(ts, UTC)
    return t.strftime("%H:%M:%S" if span < 86400 else "%m-%d %H:%M" if span < 30 * 86400 else "%Y-%m-%d")


def _axis(t0: float, t1: float, y: int, height: int) -> list[str]:
    """Five time ticks with grid lines down to `y`."""
    out = []
    span = max(t1 - t0, 1e-9)
    for i in range(5):
        ts = t0 + span * i / 4
        x = LEFT + (WIDTH - LEFT - RIGHT) * i / 4
        out.append(f'<line x1="{x:.1f}" y1="10" x2="{x:.1f}" y2="{y}" class="grid"/>')
        anchor = "start" if i == 0 else "end" if i == 4 else "middle"
        out.append(f'<text x="{x:.1f}" y="{y + 16}" text-anchor="{anchor}" class="tick">{_e(clock(ts, span))}</text>')
    return out


@dataclass
class TimelineRow:
    """One incident on the timeline: a bar from start to end and a mark per piece of evidence."""

    label: str
    start: float
    end: float
    score: int
    anchor: str
    marks: list[tuple[float, str, str]] = field(default_factory=list)  # (ts, evidence kind, tooltip)


def timeline(rows: Sequence[TimelineRow]) -> str:
    """Incidents as bars on one time axis, each piece of evidence a dot coloured by its kind."""
    if not rows:
        return ""
    t0 = min(min([r.start, *(m[0] for m in r.marks)]) for r in rows)
    t1 = max(max([r.end, *(m[0] for m in r.marks)]) for r in rows)
    pad = max((t1 - t0) * 0.03, 1.0)
    t0, t1 = t0 - pad, t1 + pad
    plot_w = WIDTH - LEFT - RIGHT

    def x(ts: float) -> float:
        return LEFT + plot_w * (ts - t0) / (t1 - t0)

    row_h = 30
    height = 20 + row_h * len(rows)
    parts = _axis(t0, t1, height, height)
    for i, r in enumerate(rows):
        y = 20 + i * row_h
        hue = "#e15759" if r.score >= 80 else "#f28e2b" if r.score >= 50 else "#edc948"
        x0, x1 = x(r.start), max(x(r.end), x(r.start) + 3)
        label = f'<text x="{LEFT - 8}" y="{y + 14}" text-anchor="end" class="lbl">{_e(r.label[:28])}</text>'
        parts.append(f'<a href="#{_e(r.anchor)}">{label}</a>')
        bar = f'x="{x0:.1f}" y="{y + 4}" width="{x1 - x0:.1f}" height="16" rx="3" fill="{hue}" fill-opacity="0.35"'
        parts.append(f'<rect {bar} stroke="{hue}"><title>{_e(r.label)}: score {r.score}</title></rect>')
        for ts, kind, tip in r.marks:
            dot = f'cx="{x(ts):.1f}" cy="{y + 12}" r="5" fill="{MARK_COLORS.get(kind, "#333")}" stroke="#fff"'
            parts.append(f"<circle {dot}><title>{_e(tip)}</title></circle>")
    legend = _legend(list(MARK_COLORS.items()), height + 30)
    return _svg(height + 50, "incident timeline", [*parts, *legend])


def stacked_bars(points: Sequence[tuple[float, str, float]], title: str, unit: str, top: int = len(PALETTE) - 1) -> str:
    """(ts, series, value) summed into time buckets, one colour per series; the smallest series fold into 'other'."""
    if not points:
        return ""
    lo, hi = min(p[0] for p in points), max(p[0] for p in points)
    width = bucket_width(lo, hi)
    start = lo - lo % width
    count = int((hi - start) // width) + 1
    totals: dict[str, float] = {}
    for _, name, value in points:
        totals[name] = totals.get(name, 0.0) + value
    keep = sorted(totals, key=lambda n: (-totals[n], n))[:top]
    names = keep + (["other"] if len(totals) > len(keep) else [])
    grid = {n: [0.0] * count for n in names}
    for ts, name, value in points:
        grid[name if name in keep else "other"][int((ts - start) // width)] += value
    peak = max(sum(grid[n][i] for n in names) for i in range(count)) or 1.0
    plot_h, plot_w = 160, WIDTH - LEFT - RIGHT
    bar_w = plot_w / count
    parts = _axis(start, start + width * count, plot_h + 10, plot_h)
    parts.append(f'<text x="{LEFT - 8}" y="20" text-anchor="end" class="tick">{_e(_num(peak))} {_e(unit)}</text>')
    parts.append(f'<text x="{LEFT - 8}" y="{plot_h + 10}" text-anchor="end" class="tick">0</text>')
    for i in range(count):
        y = plot_h + 10
        for j, name in enumerate(names):
            v = grid[name][i]
            if not v:
                continue
            h = v / peak * plot_h
            y -= h
            when = clock(start + i * width, width * count)
            box = f'x="{LEFT + i * bar_w + 1:.1f}" y="{y:.1f}" width="{max(bar_w - 2, 1):.1f}" height="{h:.1f}"'
            tip = f"{name}: {_num(v)} {unit} at {when} (+{width}s)"
            parts.append(f'<rect {box} fill="{PALETTE[j % len(PALETTE)]}"><title>{_e(tip)}</title></rect>')
    legend = _legend([(n, PALETTE[j % len(PALETTE)]) for j, n in enumerate(names)], plot_h + 40)
    rows = -(-len(names) // LEGEND_COLUMNS)
    return _svg(plot_h + 40 + 18 * rows + 10, title, [*parts, *legend])


def _num(v: float) -> str:
    return f"{v:,.0f}" if v >= 10 or v == int(v) else f"{v:.1f}"


def _legend(items: Sequence[tuple[str, str]], y: int) -> list[str]:
    out = []
    for i, (name, color) in enumerate(items):
        lx, ly = LEFT + (i % LEGEND_COLUMNS) * 160, y + (i // LEGEND_COLUMNS) * 18
        out.append(f'<rect x="{lx}" y="{ly - 9}" width="10" height="10" fill="{color}"/>')
        out.append(f'<text x="{lx + 14}" y="{ly}" class="tick">{_e(name[:24])}</text>')
    return out


def _svg(height: int, title: str, parts: list[str]) -> str:
    body = "\n".join(parts)
    head = f'<svg class="plot" viewBox="0 0 {WIDTH} {height}" role="img" aria-label="{_e(title)}">'
    return f"{head}\n{body}\n</svg>"
