"""Horizontal bar charts as inline SVG, drawn on the server: no script, no network."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

_ROW = 28
_LABEL = 170
_BAR = 320
_VALUE = 90


@dataclass(frozen=True)
class Bar:
    """One bar: its label, its value (None: nothing to measure), and how the value is written."""

    label: str
    value: float | None
    text: str


def bar_chart(title: str, bars: Sequence[Bar], *, scale_max: float | None = None) -> Markup:
    """An accessible SVG bar chart (``role="img"`` with the title and every value as text)."""
    top = max([b.value for b in bars if b.value is not None] + [scale_max or 0.0, 0.0])
    height = _ROW * max(len(bars), 1) + 8
    width = _LABEL + _BAR + _VALUE
    parts = [
        f'<svg class="chart" role="img" aria-label="{escape(title)}" '
        f'viewBox="0 0 {width} {height}" width="{width}" height="{height}">',
        f"<title>{escape(title)}</title>",
    ]
    if not bars:
        parts.append('<text x="0" y="20" class="chart-empty">nothing to show yet</text>')
    for i, bar in enumerate(bars):
        y = i * _ROW + 4
        length = 0.0 if not bar.value or top <= 0 else _BAR * bar.value / top
        parts += [
            f'<text x="{_LABEL - 8}" y="{y + 17}" text-anchor="end">{escape(bar.label)}</text>',
            f'<rect x="{_LABEL}" y="{y + 4}" width="{length:.1f}" height="{_ROW - 10}" rx="3"/>',
            f'<text x="{_LABEL + length + 6:.1f}" y="{y + 17}">{escape(bar.text)}</text>',
        ]
    parts.append("</svg>")
    return Markup("".join(parts))
