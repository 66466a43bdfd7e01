"""The dashboard's chart per partner: daily volume and failures as an inline SVG,
rendered on the server (no script, no external file), and its durations in words
(:func:`duration`). Pure: numbers in, markup out; every text is escaped."""

from __future__ import annotations

from datetime import date
from html import escape

WIDTH, HEIGHT, PAD = 280, 80, 14


def volume_svg(partner_id: str, days: list[date], total: list[int], failed: list[int]) -> str:
    peak = max([*total, 1])
    slot = (WIDTH - 2) / max(len(days), 1)
    bar = max(slot - 2, 1)
    bars = []
    for i, day in enumerate(days):
        x = 1 + i * slot
        h_total = (HEIGHT - PAD) * total[i] / peak
        h_failed = (HEIGHT - PAD) * failed[i] / peak
        label = f"{day.isoformat()}: {total[i]} message(s), {failed[i]} failed"
        bars.append(
            f"<g><title>{escape(label)}</title>"
            f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h_total:.1f}" width="{bar:.1f}" height="{h_total:.1f}" fill="#2f6db5"/>'
            f'<rect x="{x:.1f}" y="{HEIGHT - PAD - h_failed:.1f}" width="{bar:.1f}" height="{h_failed:.1f}" fill="#b3261e"/></g>'
        )
    summary = (
        f"{partner_id}: {sum(total)} messages, {sum(failed)} failed over {len(days)} days; peak {peak} a day"
    )
    first = days[0].strftime("%d %b") if days else ""
    last = days[-1].strftime("%d %b") if days else ""
    return (
        f'<svg class="chart" role="img" aria-label="{escape(summary)}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(summary)}</title>"
        f'<line x1="0" y1="{HEIGHT - PAD}" x2="{WIDTH}" y2="{HEIGHT - PAD}" stroke="#555"/>'
        + "".join(bars)
        + f'<text x="1" y="{HEIGHT - 2}" font-size="10" fill="#222">{escape(first)}</text>'
        f'<text x="{WIDTH - 1}" y="{HEIGHT - 2}" font-size="10" fill="#222" text-anchor="end">{escape(last)}</text>'
        "</svg>"
    )


def duration(ms: float) -> str:
    """A duration as people read it: 850 ms, 12.3 s, 4.2 min, 1.5 h, 2.0 d."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if ms >= size:
            return f"{ms / size:.1f} {unit}"
    return f"{ms:.0f} ms"
