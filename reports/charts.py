"""Charts as inline SVG, built as text with fixed number formatting (so renders are byte-identical)."""

from __future__ import annotations

from django.utils.html import escape
from django.utils.safestring import SafeString, mark_safe

OK, WARN, BAD, GREY, INK = "#17683a", "#b7791f", "#a3192b", "#c5ccd4", "#1b2430"


def _n(value: float) -> str:
    return f"{value:.1f}"


def pass_rate_bars(rows: list[tuple[str, float | None]], *, width: int = 520) -> SafeString:
    """One horizontal bar per (label, pass rate 0..1 or None for 'not evaluated')."""
    label_w, bar_h, gap, top = 110, 12, 5, 18
    bar_w = width - label_w - 50
    height = top + len(rows) * (bar_h + gap) + 6
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
        f'role="img" aria-label="Pass rate per control">',
        f'<text x="{label_w}" y="11" font-size="8" fill="{INK}">0%</text>',
        f'<text x="{label_w + bar_w}" y="11" font-size="8" fill="{INK}" text-anchor="end">100%</text>',
    ]
    for i, (label, rate) in enumerate(rows):
        y = top + i * (bar_h + gap)
        parts.append(f'<text x="{label_w - 4}" y="{_n(y + bar_h - 3)}" font-size="8" fill="{INK}" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{bar_w}" height="{bar_h}" fill="#eef1f4"/>')
        if rate is None:
            parts.append(f'<text x="{label_w + 4}" y="{_n(y + bar_h - 3)}" font-size="7.5" fill="{INK}">'
                         f'not evaluated</text>')
            continue
        colour = OK if rate >= 0.95 else WARN if rate >= 0.8 else BAD
        parts.append(f'<rect x="{label_w}" y="{y}" width="{_n(bar_w * rate)}" height="{bar_h}" fill="{colour}"/>')
        parts.append(f'<text x="{label_w + bar_w + 4}" y="{_n(y + bar_h - 3)}" font-size="8" fill="{INK}">'
                     f'{rate * 100:.1f}%</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def severity_bars(counts: list[tuple[str, int, int]], *, width: int = 520) -> SafeString:
    """Stacked bars per severity: (label, open, risk accepted)."""
    label_w, bar_h, gap, top = 70, 14, 6, 4
    bar_w = width - label_w - 90
    biggest = max([o + a for _, o, a in counts] + [1])
    height = top + len(counts) * (bar_h + gap) + 4
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="Open findings by severity">']
    for i, (label, open_count, accepted) in enumerate(counts):
        y = top + i * (bar_h + gap)
        open_w, accepted_w = bar_w * open_count / biggest, bar_w * accepted / biggest
        parts.append(f'<text x="{label_w - 4}" y="{y + bar_h - 4}" font-size="8" fill="{INK}" '
                     f'text-anchor="end">{escape(label)}</text>')
        parts.append(f'<rect x="{label_w}" y="{y}" width="{_n(open_w)}" height="{bar_h}" fill="{BAD}"/>')
        parts.append(f'<rect x="{_n(label_w + open_w)}" y="{y}" width="{_n(accepted_w)}" height="{bar_h}" '
                     f'fill="{WARN}"/>')
        parts.append(f'<text x="{_n(label_w + open_w + accepted_w + 4)}" y="{y + bar_h - 4}" font-size="8" '
                     f'fill="{INK}">{open_count} open, {accepted} accepted</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))


def completion_bar(segments: list[tuple[str, int, str]], *, width: int = 520) -> SafeString:
    """One stacked bar of a whole split into parts: (label, count, colour); a legend with the shares below."""
    total = sum(count for _, count, _ in segments)
    bar_h, legend_top, row_h = 18, 34, 13
    height = legend_top + len(segments) * row_h + 2
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {width} {height}" width="{width}" '
             f'height="{height}" role="img" aria-label="Completion">',
             f'<rect x="0" y="4" width="{width}" height="{bar_h}" fill="#eef1f4"/>']
    x = 0.0
    for _, count, colour in segments:
        if total and count:
            w = width * count / total
            parts.append(f'<rect x="{_n(x)}" y="4" width="{_n(w)}" height="{bar_h}" fill="{colour}"/>')
            x += w
    for i, (label, count, colour) in enumerate(segments):
        y = legend_top + i * row_h
        share = f"{count * 100 / total:.1f}%" if total else "—"
        parts.append(f'<rect x="0" y="{y - 8}" width="9" height="9" fill="{colour}"/>')
        parts.append(f'<text x="14" y="{y}" font-size="8" fill="{INK}">{escape(label)}: {count} ({share})</text>')
    parts.append("</svg>")
    return mark_safe("".join(parts))
