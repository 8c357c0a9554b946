"""A tiny server-side SVG chart renderer: stacked bars, horizontal bars and lines.

Charts are plain inline SVG, so the dashboard needs no JavaScript and no CDN, and they
print and screenshot as they look. Every label is escaped; hover titles give the values.
Sizes are in viewBox units; `width` should roughly match the space on the page, so the
12-unit text comes out near 12 px.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from markupsafe import Markup, escape

WIDTH = 600
FONT = 12
MUTED = "#6b7280"
GRID = "#e5e7eb"
ACCENT = "#2563eb"
TRACK = "#f3f4f6"
AXIS_LEFT = 44  # room for the y-axis labels
Fmt = Callable[[float], str]


def number(v: float) -> str:
    return f"{v:.2f}".rstrip("0").rstrip(".")


def integer(v: float) -> str:
    return f"{v:,.0f}"


def pct(v: float) -> str:
    return f"{v * 100:.0f}%"


def ticks(top: float, *, count: int = 4, whole: bool = True) -> list[float]:
    """Round tick values from 0 to at least `top` (steps of 1, 2 or 5 times 10^n)."""
    top = max(top, 1.0 if whole else 1e-9)
    raw = top / count
    power = 10 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    if whole:
        step = max(1.0, step)
    n = math.ceil(top / step - 1e-9)
    return [step * i for i in range(n + 1)]


def _svg(width: float, height: float, body: list[str], label: str) -> Markup:
    return Markup(  # noqa: S704 - every text part is escaped where it is built
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg" '
        f'font-size="{FONT}">' + "".join(body) + "</svg>"
    )


def _text(x: float, y: float, s: str, *, anchor: str = "start", fill: str = MUTED) -> str:
    return f'<text x="{x:.1f}" y="{y:.1f}" text-anchor="{anchor}" fill="{fill}">{escape(s)}</text>'


def _rect(x: float, y: float, w: float, h: float, fill: str, title: str = "", rx: int = 0) -> str:
    tip = f"<title>{escape(title)}</title>" if title else ""
    return (
        f'<rect x="{x:.1f}" y="{y:.1f}" width="{w:.1f}" height="{h:.1f}" rx="{rx}" '
        f'fill="{fill}">{tip}</rect>'
    )


def _hline(x1: float, x2: float, y: float, color: str, dash: str = "") -> str:
    extra = f' stroke-dasharray="{dash}"' if dash else ""
    return f'<line x1="{x1:.1f}" x2="{x2:.1f}" y1="{y:.1f}" y2="{y:.1f}" stroke="{color}"{extra}/>'


def _truncate(s: str, n: int) -> str:
    return s if len(s) <= n else s[: n - 1].rstrip() + "…"


def empty(label: str, message: str = "No data in this period yet", width: int = WIDTH) -> Markup:
    return _svg(width, 60, [_text(width / 2, 34, message, anchor="middle")], label)


@dataclass(frozen=True)
class Series:
    name: str
    values: Sequence[float | None]
    color: str = ACCENT


def _legend(series: Sequence[Series], y: float) -> list[str]:
    out, x = [], float(AXIS_LEFT + 4)
    for s in series:
        out.append(_rect(x, y - 9, 10, 10, s.color, rx=2))
        out.append(_text(x + 14, y, s.name, fill="#374151"))
        x += 28 + 7 * len(s.name)
    return out


def _y_axis(
    width: float, top: float, bottom: float, values: Sequence[float], lo: float, fmt: Fmt
) -> list[str]:
    hi = values[-1]
    out = []
    for v in values:
        y = bottom - (bottom - top) * (v - lo) / (hi - lo)
        out.append(_hline(AXIS_LEFT, width - 8, y, GRID))
        out.append(_text(AXIS_LEFT - 4, y + 4, fmt(v), anchor="end"))
    return out


def _x_labels(width: float, labels: Sequence[str], xs: Sequence[float], y: float) -> list[str]:
    # Thin the labels out so they never overlap (about 56 units per label).
    every = max(1, math.ceil(len(labels) * 56 / (width - AXIS_LEFT - 16)))
    return [
        _text(x, y, lab, anchor="middle")
        for i, (x, lab) in enumerate(zip(xs, labels, strict=True))
        if i % every == 0
    ]


def stacked_bars(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    width: int = WIDTH,
    height: int = 240,
) -> Markup:
    """Vertical bars, one per label, each stacked from the series' values."""
    totals = [sum((s.values[i] or 0) for s in series) for i in range(len(labels))]
    if not labels or not any(totals):
        return empty(label, width=width)
    top, bottom = 30.0, height - 24.0
    scale = ticks(max(totals))
    hi = scale[-1]
    body = _legend(series, 14) + _y_axis(width, top, bottom, scale, 0.0, integer)
    slot = (width - AXIS_LEFT - 16) / len(labels)
    bar = max(4.0, min(40.0, slot * 0.65))
    xs = []
    for i, lab in enumerate(labels):
        x = AXIS_LEFT + 8 + slot * i + (slot - bar) / 2
        xs.append(x + bar / 2)
        y = bottom
        for s in series:
            v = s.values[i] or 0
            if v:
                h = (bottom - top) * v / hi
                y -= h
                body.append(_rect(x, y, bar, h, s.color, f"{lab}: {s.name} {integer(v)}"))
    body += _x_labels(width, labels, xs, height - 6)
    return _svg(width, height, body, label)


@dataclass(frozen=True)
class Bar:
    label: str
    value: float
    note: str = ""  # shown after the value, e.g. "12 of 40"
    href: str | None = None


def hbars(
    bars: Sequence[Bar],
    *,
    label: str,
    max_value: float | None = None,
    fmt: Fmt = integer,
    color: str = ACCENT,
    width: int = WIDTH,
    label_width: int = 200,
) -> Markup:
    """Horizontal bars with the label on the left and the value (and note) on the right."""
    if not bars:
        return empty(label, width=width)
    row = 28
    height = row * len(bars) + 6
    left, right = float(label_width + 10), width - 110.0
    hi = max_value if max_value is not None else ticks(max(b.value for b in bars))[-1]
    hi = hi or 1.0
    chars = max(8, int(label_width / (FONT * 0.6)))  # about 7 units per character
    body = []
    for i, b in enumerate(bars):
        y = 4 + i * row
        w = max(0.0, (right - left) * min(b.value, hi) / hi)
        text = _text(left - 8, y + 16, _truncate(b.label, chars), anchor="end", fill="#111827")
        if b.href:
            text = f'<a href="{escape(b.href)}"><title>{escape(b.label)}</title>{text}</a>'
        body.append(text)
        body.append(_rect(left, y + 4, right - left, 16, TRACK, rx=3))
        body.append(_rect(left, y + 4, w, 16, color, f"{b.label}: {fmt(b.value)}", rx=3))
        note = fmt(b.value) + (f"  ({b.note})" if b.note else "")
        body.append(_text(right + 8, y + 16, note, fill="#374151"))
    return _svg(width, height, body, label)


def lines(
    labels: Sequence[str],
    series: Sequence[Series],
    *,
    label: str,
    lo: float,
    hi: float,
    fmt: Fmt = number,
    width: int = WIDTH,
    height: int = 220,
    steps: int = 4,
    zero_line: bool = False,
) -> Markup:
    """Lines over the labels; a None value leaves a gap (no data that week)."""
    if not labels or all(v is None for s in series for v in s.values):
        return empty(label, width=width)
    top, bottom = 30.0, height - 24.0
    scale = [lo + (hi - lo) * i / steps for i in range(steps + 1)]
    body = _legend(series, 14) + _y_axis(width, top, bottom, scale, lo, fmt)
    if zero_line and lo < 0 < hi:
        y0 = bottom - (bottom - top) * (0 - lo) / (hi - lo)
        body.append(_hline(AXIS_LEFT, width - 8, y0, MUTED, "4 3"))
    n = len(labels)
    step = (width - AXIS_LEFT - 40) / max(1, n - 1)
    xs = [AXIS_LEFT + 20 + step * i for i in range(n)] if n > 1 else [width / 2]
    dots: list[str] = []
    for s in series:
        runs: list[list[str]] = [[]]
        for x, v, lab in zip(xs, s.values, labels, strict=True):
            if v is None:  # a gap: a missing week is not drawn as a line across
                runs.append([])
                continue
            y = bottom - (bottom - top) * (min(max(v, lo), hi) - lo) / (hi - lo)
            runs[-1].append(f"{x:.1f},{y:.1f}")
            dots.append(
                f'<circle cx="{x:.1f}" cy="{y:.1f}" r="3.5" fill="{s.color}">'
                f"<title>{escape(lab)}: {escape(fmt(v))}</title></circle>"
            )
        body += [
            f'<polyline points="{" ".join(run)}" fill="none" stroke="{s.color}" '
            'stroke-width="2" stroke-linejoin="round"/>'
            for run in runs
            if len(run) > 1
        ]
    body += dots  # on top of the lines
    body += _x_labels(width, labels, xs, height - 6)
    return _svg(width, height, body, label)
