"""Small server-side SVG charts (no script, no CDN): bars per hour, and a line pair for p50/p90."""

from __future__ import annotations

from collections.abc import Sequence

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from controlroom.selectors import HourStats

W, H, PAD = 480, 140, 24


def _frame(title: str, body: str, top: float, unit: str) -> SafeString:
    return format_html(
        '<figure class="cr-chart"><figcaption>{}</figcaption>'
        '<svg viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}">'
        '<line x1="{}" y1="{}" x2="{}" y2="{}" stroke="#999"/>'
        '<text x="2" y="12" font-size="10" fill="#666">{}</text>{}</svg></figure>',
        title,
        W,
        H,
        W,
        H,
        title,
        PAD,
        H - PAD,
        W,
        H - PAD,
        f"{top:g}{unit}",
        mark_safe(body),  # noqa: S308 - built below from numbers and escaped labels only
    )


def _x(i: int, n: int) -> float:
    return PAD + (W - PAD) * i / n


def _labels(hours: Sequence[HourStats]) -> str:
    n = len(hours)
    return "".join(
        f'<text x="{_x(i, n):.1f}" y="{H - 8}" font-size="9" fill="#666">{escape(h.hour.strftime("%H"))}</text>'
        for i, h in enumerate(hours)
        if i % 3 == 0
    )


def bars_svg(title: str, hours: Sequence[HourStats], series: Sequence[tuple[str, str]]) -> SafeString:
    """Grouped bars per hour; series = (attribute, colour)."""
    n = len(hours)
    top = max([1, *(getattr(h, a) for h in hours for a, _ in series)])
    slot = (W - PAD) / max(n, 1)
    bar = max(slot / (len(series) + 1), 1)
    parts = []
    for i, h in enumerate(hours):
        for j, (attr, colour) in enumerate(series):
            v = getattr(h, attr)
            height = (H - 2 * PAD) * v / top
            x = _x(i, n) + j * bar
            parts.append(
                f'<rect x="{x:.1f}" y="{H - PAD - height:.1f}" width="{bar:.1f}" height="{height:.1f}" '
                f'fill="{colour}"><title>{escape(h.hour.strftime("%H:00"))} {attr}: {v}</title></rect>'
            )
    legend = "".join(
        f'<text x="{W - 90}" y="{12 + 11 * k}" font-size="10" fill="{c}">■ {escape(a)}</text>'
        for k, (a, c) in enumerate(series)
    )
    return _frame(title, "".join(parts) + _labels(hours) + legend, top, "")


def lines_svg(title: str, hours: Sequence[HourStats], series: Sequence[tuple[str, str]]) -> SafeString:
    """Lines per hour (hours without a value leave a gap); series = (attribute, colour)."""
    n = len(hours)
    values = [getattr(h, a) for h in hours for a, _ in series if getattr(h, a) is not None]
    top = max([1.0, *values])
    parts = []
    for attr, colour in series:
        points = []
        for i, h in enumerate(hours):
            v = getattr(h, attr)
            if v is None:
                continue
            y = H - PAD - (H - 2 * PAD) * v / top
            points.append(f"{_x(i, n) + 4:.1f},{y:.1f}")
            parts.append(
                f'<circle cx="{_x(i, n) + 4:.1f}" cy="{y:.1f}" r="2" fill="{colour}">'
                f"<title>{escape(h.hour.strftime('%H:00'))} {attr}: {v:.1f} s</title></circle>"
            )
        if points:
            parts.append(f'<polyline fill="none" stroke="{colour}" points="{" ".join(points)}"/>')
    legend = "".join(
        f'<text x="{W - 90}" y="{12 + 11 * k}" font-size="10" fill="{c}">■ {escape(a)}</text>'
        for k, (a, c) in enumerate(series)
    )
    return _frame(title, "".join(parts) + _labels(hours) + legend, round(top, 1), " s")


def dashboard_charts(hours: Sequence[HourStats]) -> list[SafeString]:
    return [
        bars_svg(
            "Last 24 h per hour: paid requests, matched, no mitra / failed",
            hours,
            (("paid", "#4a77b4"), ("matched", "#3a9a5b"), ("failed", "#c0392b")),
        ),
        lines_svg(
            "Time to accept (seconds): median and p90",
            hours,
            (("accept_p50", "#4a77b4"), ("accept_p90", "#e67e22")),
        ),
    ]
