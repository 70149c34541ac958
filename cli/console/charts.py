"""The throughput chart, drawn on the server as SVG: stacked bars per minute (completed, failed, failed for
good), with a native tooltip per bar. No chart library and no script: it renders offline, under a strict
Content-Security-Policy, and in the refreshed fragment as it is."""

from __future__ import annotations

from markupsafe import Markup, escape

from db.readings import Bucket

WIDTH, HEIGHT, LEFT, BOTTOM, TOP = 720, 160, 44, 22, 8
SERIES = (("completed", "bar-completed"), ("failed", "bar-failed"), ("dead", "bar-dead"))


def throughput_svg(buckets: list[Bucket], *, per: str) -> Markup:
    """Bars for `buckets` (oldest first); `per` names a bucket's length for the tooltips ("minute")."""
    top = max((b.completed + b.failed + b.dead for b in buckets), default=0)
    scale = _nice(top)
    plot_w, plot_h = WIDTH - LEFT - 4, HEIGHT - BOTTOM - TOP
    step = plot_w / max(len(buckets), 1)
    parts = [
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="jobs per {escape(per)}: completed, failed, failed for good">'
    ]
    for fraction in (0.0, 0.5, 1.0):  # grid lines and their values
        y = TOP + plot_h * (1 - fraction)
        parts.append(f'<line class="grid" x1="{LEFT}" x2="{WIDTH - 4}" y1="{y:.1f}" y2="{y:.1f}"/>')
        parts.append(f'<text class="axis" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">{scale * fraction:g}</text>')
    for index, bucket in enumerate(buckets):
        x = LEFT + index * step
        base = TOP + plot_h
        title = (
            f"{bucket.start:%H:%M} UTC: {bucket.completed} completed, {bucket.failed} failed, "
            f"{bucket.dead} failed for good"
        )
        group = [f'<g class="bucket"><title>{escape(title)}</title>']
        for name, css in SERIES:
            value = getattr(bucket, name)
            if not value or not scale:
                continue
            height = plot_h * value / scale
            base -= height
            group.append(
                f'<rect class="{css}" x="{x + 0.5:.1f}" y="{base:.1f}" width="{max(step - 1, 1):.1f}" '
                f'height="{height:.1f}"/>'
            )
        group.append("</g>")
        parts.append("".join(group))
    for index in _label_indexes(len(buckets)):
        x = LEFT + index * step
        label = f"{buckets[index].start:%H:%M}"
        parts.append(f'<text class="axis" x="{x:.1f}" y="{HEIGHT - 6}">{label}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))  # noqa: S704 - every value in it is a number or escaped above


def _nice(top: int) -> int:
    """A round ceiling for the y axis (1, 2, 5 x 10^n) at or above `top`."""
    if top <= 0:
        return 0
    magnitude = 1
    while True:
        for factor in (1, 2, 5):
            if factor * magnitude >= top:
                return factor * magnitude
        magnitude *= 10


def _label_indexes(n: int) -> list[int]:
    if n == 0:
        return []
    every = max(n // 6, 1)
    return list(range(0, n - every // 2, every))  # none so close to the right edge that it is cut off
