"""Small server-side SVG charts: no JavaScript and nothing fetched from the internet."""

from __future__ import annotations

from collections import Counter
from datetime import date
from html import escape

from markupsafe import Markup

COLOURS = {"repair": "#3b82f6", "dispute": "#f59e0b", "service": "#10b981"}
NAMES = {"repair": "报修", "dispute": "纠纷", "service": "服务"}


def daily_bars(by_day: dict[date, Counter[str]], width: int = 720, height: int = 220) -> Markup:
    """Tickets per day, stacked by category, with a legend."""
    days = sorted(by_day)
    if not days:
        return Markup("")
    top = max([1, *(sum(c.values()) for c in by_day.values())])
    left, bottom, plot_h = 36, 28, height - 56
    step = (width - left - 10) / len(days)
    bar = max(2.0, step * 0.7)
    parts = [
        f'<svg class="chart" role="img" aria-label="每日工单" viewBox="0 0 {width} {height}" '
        f'width="100%" xmlns="http://www.w3.org/2000/svg">',
        f'<text x="{left}" y="14" font-size="12">最多 {top} 件/天</text>',
        f'<line x1="{left}" y1="{height - bottom}" x2="{width - 5}" y2="{height - bottom}" '
        'stroke="#999"/>',
    ]
    for i, day in enumerate(days):
        x = left + i * step + (step - bar) / 2
        y = float(height - bottom)
        for category in ("repair", "dispute", "service"):
            n = by_day[day][category]
            if not n:
                continue
            h = n / top * plot_h
            y -= h
            parts.append(
                f'<rect x="{x:.1f}" y="{y:.1f}" width="{bar:.1f}" height="{h:.1f}" '
                f'fill="{COLOURS[category]}">'
                f"<title>{day:%m-%d} {NAMES[category]} {n}</title></rect>"
            )
        if len(days) <= 14 or i % max(1, len(days) // 10) == 0:
            parts.append(f'<text x="{x:.1f}" y="{height - 10}" font-size="10">{day:%m-%d}</text>')
    for j, category in enumerate(("repair", "dispute", "service")):
        lx = width - 200 + j * 65
        parts.append(f'<rect x="{lx}" y="4" width="10" height="10" fill="{COLOURS[category]}"/>')
        parts.append(f'<text x="{lx + 14}" y="13" font-size="12">{NAMES[category]}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


def share_bars(rows: list[tuple[str, float | None, str]], width: int = 720) -> Markup:
    """Horizontal bars for shares in [0, 1]: (label, value, caption)."""
    if not rows:
        return Markup("")
    row_h, label_w = 26, 170
    height = row_h * len(rows) + 8
    parts = [
        f'<svg class="chart" role="img" viewBox="0 0 {width} {height}" width="100%" '
        'xmlns="http://www.w3.org/2000/svg">'
    ]
    for i, (label, value, caption) in enumerate(rows):
        y = 4 + i * row_h
        full = width - label_w - 90
        w = (value or 0.0) * full
        colour = (
            "#10b981" if (value or 0) >= 0.9 else "#f59e0b" if (value or 0) >= 0.7 else "#ef4444"
        )
        parts.append(f'<text x="0" y="{y + 16}" font-size="12">{escape(label)}</text>')
        parts.append(
            f'<rect x="{label_w}" y="{y + 4}" width="{full}" height="16" fill="#eee"/>'
            f'<rect x="{label_w}" y="{y + 4}" width="{w:.1f}" height="16" fill="{colour}"/>'
        )
        parts.append(
            f'<text x="{label_w + full + 6}" y="{y + 16}" font-size="12">{escape(caption)}</text>'
        )
    parts.append("</svg>")
    return Markup("".join(parts))
