"""Server-side inline SVG charts for the posture dashboard: no JavaScript, no external files.

Each chart is an <svg role="img"> with a title naming what it shows; the pages also give the
numbers in a table, so the chart is never the only way to read them.
"""

from __future__ import annotations

import datetime as dt

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

WIDTH, HEIGHT, PAD = 640, 180, 30


def line_chart(
    points: list[tuple[dt.date, float]],
    *,
    label: str,
    width: int = WIDTH,
    height: int = HEIGHT,
    maximum: float = 100.0,
) -> SafeString:
    """A line of percentages over dates, with the first and last dates and 0/50/100 % gridlines."""
    if not points:
        return format_html(
            '<p class="empty">{}</p>',
            "No snapshots yet: the trend starts after the first daily posture snapshot.",
        )
    inner_w, inner_h = width - 2 * PAD, height - 2 * PAD
    first, last = points[0][0], points[-1][0]
    span = max((last - first).days, 1)

    def xy(date: dt.date, value: float) -> tuple[float, float]:
        x = PAD + inner_w * ((date - first).days / span if len(points) > 1 else 0.5)
        y = PAD + inner_h * (1 - min(max(value, 0.0), maximum) / maximum)
        return round(x, 1), round(y, 1)

    coords = [xy(d, v) for d, v in points]
    grid = format_html_join(
        "",
        '<line x1="{}" x2="{}" y1="{}" y2="{}" class="grid" stroke="#d5dae0"/>'
        '<text x="{}" y="{}" font-size="10" fill="#505a66" text-anchor="end">{}%</text>',
        (
            (PAD, width - PAD, y, y, PAD - 4, y + 3, pct)
            for pct, y in ((p, PAD + inner_h * (1 - p / maximum)) for p in (0, 50, 100))
        ),
    )
    line = " ".join(f"{x},{y}" for x, y in coords)
    dots = format_html_join(
        "",
        '<circle cx="{}" cy="{}" r="2.5" fill="#1f5fbf"><title>{}: {}%</title></circle>',
        ((x, y, d.isoformat(), v) for (x, y), (d, v) in zip(coords, points, strict=True)),
    )
    axis = format_html(
        '<text x="{}" y="{}" font-size="10" fill="#505a66">{}</text>'
        '<text x="{}" y="{}" font-size="10" fill="#505a66" text-anchor="end">{}</text>',
        PAD,
        height - 8,
        first.isoformat(),
        width - PAD,
        height - 8,
        last.isoformat(),
    )
    return format_html(
        '<svg role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" class="chart" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}<polyline points="{}" fill="none" '
        'stroke="#1f5fbf" stroke-width="2"/>{}{}</svg>',
        label,
        width,
        height,
        width,
        label,
        grid,
        line,
        dots,
        axis,
    )


def sparkline(
    points: list[tuple[dt.date, float]], *, label: str, width: int = 120, height: int = 28
) -> SafeString:
    if len(points) < 2:
        return mark_safe("")
    first, span = points[0][0], max((points[-1][0] - points[0][0]).days, 1)
    line = " ".join(
        f"{round(2 + (width - 4) * (d - first).days / span, 1)},{round(2 + (height - 4) * (1 - v / 100), 1)}"
        for d, v in points
    )
    return format_html(
        '<svg role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" height="{}" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title><polyline points="{}" fill="none" '
        'stroke="#1f5fbf" stroke-width="1.5"/></svg>',
        label,
        width,
        height,
        width,
        height,
        label,
        line,
    )


SEVERITY_COLOURS = {"critical": "#a3192b", "high": "#b35c00", "medium": "#7a4b00", "low": "#505a66"}


def bar_chart(values: dict[str, int], *, label: str, width: int = 420, bar: int = 22) -> SafeString:
    """Horizontal bars, one per key (severities), labelled with the count."""
    peak = max(values.values(), default=0) or 1
    height = bar * len(values) + 8
    rows = []
    for i, (name, count) in enumerate(values.items()):
        y = 4 + i * bar
        length = round((width - 150) * count / peak, 1)
        rows.append(
            format_html(
                '<text x="0" y="{}" font-size="12" fill="#1b2430">{}</text>'
                '<rect x="80" y="{}" width="{}" height="{}" fill="{}"><title>{}: {}</title></rect>'
                '<text x="{}" y="{}" font-size="12" fill="#1b2430">{}</text>',
                y + 15,
                name.capitalize(),
                y + 3,
                length,
                bar - 8,
                SEVERITY_COLOURS.get(name, "#1f5fbf"),
                name,
                count,
                84 + length,
                y + 15,
                count,
            )
        )
    return format_html(
        '<svg role="img" aria-label="{}" viewBox="0 0 {} {}" width="{}" class="chart" '
        'xmlns="http://www.w3.org/2000/svg"><title>{}</title>{}</svg>',
        label,
        width,
        height,
        width,
        label,
        mark_safe("".join(rows)),
    )
