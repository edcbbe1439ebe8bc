"""Server-rendered SVG charts: bars, lines and a Lorenz curve, each with its data as a table.

Every chart is a ``<figure>`` holding an ``<svg role="img">`` with an ``aria-label`` (the
title, and what the chart says in a sentence) and the same numbers in a ``<table>`` inside
``<details>``, so a screen reader, a text browser or a copy-paste gets them too. Colours are the
site's CSS variables (classes styled in economy.css); text is escaped here. The plot itself is
drawn left to right in every language (time and shares of people run that way on any axis):
its text too (SVG's ``direction``, which HTML's ``dir`` does not set there: an inherited
right-to-left would turn every ``text-anchor`` around and push labels off the chart); the
surrounding page, the caption and the table follow the page's direction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html import escape
from typing import Final

from markupsafe import Markup

from giftwave.web import axis

WIDTH: Final = 640
HEIGHT: Final = 240
PAD_START: Final = 56  # at least; wider when the value labels need it
TICK_FONT_PX: Final = 11  # economy.css, figure.chart .tick
TICK_GAP_PX: Final = 6
PAD_END: Final = 12
PAD_TOP: Final = 12
PAD_BOTTOM: Final = 36
SERIES_MAX: Final = 4
POINTS_MAX: Final = 2_000
MARKERS_MAX: Final = 60


def _fmt(value: float) -> str:
    if isinstance(value, float) and not value.is_integer():
        return f"{value:,.2f}"
    return f"{int(value):,}"


def _whole(values: Sequence[int | float]) -> bool:
    """A series of whole things (people, gifts, coins): its axis has whole ticks only."""
    return all(float(v).is_integer() for v in values)


@dataclass(frozen=True, slots=True)
class _ValueAxis:
    top: float  # the last tick: what the plot's height stands for
    ticks: list[float]
    labels: list[str]
    x0: float  # where the plot starts: after the widest label


def _value_axis(largest: float, whole: bool) -> _ValueAxis:
    ticks = axis.ticks(largest, integer=whole)
    digits = axis.decimals(ticks)
    labels = [f"{t:,.{digits}f}" for t in ticks]
    widest = max(axis.label_width_px(label, font_px=TICK_FONT_PX) for label in labels)
    return _ValueAxis(ticks[-1], ticks, labels, max(PAD_START, widest + 2 * TICK_GAP_PX))


def _table(caption: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    head = "".join(f"<th scope=col>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(str(c))}</td>" for c in row) + "</tr>" for row in rows
    )
    return (
        f"<details class=chart-data><summary>{escape(caption)}</summary><div class=table-wrap>"
        f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div></details>"
    )


def _frame(title: str, summary: str, inner: str, table: str) -> Markup:
    label = escape(f"{title}. {summary}" if summary else title)
    return Markup(
        f"<figure class=chart><figcaption>{escape(title)}</figcaption>"
        f'<svg role=img aria-label="{label}" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'preserveAspectRatio="xMidYMid meet" dir=ltr direction=ltr><title>{label}</title>'
        f"{inner}</svg>"
        f"{table}</figure>"
    )


def _axes(values: _ValueAxis, labels: Sequence[str]) -> str:
    """The frame, a gridline at each round tick with its value, and up to six x labels."""
    x0, x1 = values.x0, WIDTH - PAD_END
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    parts = [f'<line class=axis x1="{x0:.1f}" y1={y0} x2={x1} y2={y0} />']
    for tick, label in zip(values.ticks[1:], values.labels[1:], strict=True):
        y = y0 - (y0 - y1) * tick / values.top
        parts.append(f'<line class=grid x1="{x0:.1f}" y1="{y:.1f}" x2={x1} y2="{y:.1f}" />')
        parts.append(
            f'<text class=tick x="{x0 - TICK_GAP_PX:.1f}" y="{y + 4:.1f}" text-anchor=end>'
            f"{escape(label)}</text>"
        )
    n = len(labels)
    if n:
        step = max(1, -(-n // 6))
        for i in range(0, n, step):
            x = x0 + (x1 - x0) * (i + 0.5) / n
            parts.append(
                f'<text class=tick x="{x:.1f}" y={HEIGHT - 12} text-anchor=middle>'
                f"{escape(labels[i])}</text>"
            )
    return "".join(parts)


def empty_chart(title: str, message: str) -> Markup:
    """The empty state: no axes pretending there is data."""
    return Markup(
        f"<figure class='chart chart-empty'><figcaption>{escape(title)}</figcaption>"
        f"<p class=muted>{escape(message)}</p></figure>"
    )


def bar_chart(
    title: str,
    labels: Sequence[str],
    values: Sequence[int | float],
    *,
    value_name: str,
    empty: str,
    summary: str = "",
) -> Markup:
    assert len(labels) == len(values)
    if not values or max(values) <= 0:
        return empty_chart(title, empty)
    labels, values = labels[-POINTS_MAX:], values[-POINTS_MAX:]
    scale = _value_axis(float(max(values)), _whole(values))
    top = scale.top
    x0, x1 = scale.x0, WIDTH - PAD_END
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    slot = (x1 - x0) / len(values)
    bars = []
    for i, v in enumerate(values):
        h = (y0 - y1) * max(0.0, float(v)) / top
        bars.append(
            f'<rect class=bar x="{x0 + i * slot + slot * 0.1:.1f}" y="{y0 - h:.1f}" '
            f'width="{max(slot * 0.8, 0.5):.1f}" height="{h:.1f}"><title>'
            f"{escape(labels[i])}: {escape(_fmt(v))}</title></rect>"
        )
    table = _table(
        title, ["", value_name], [[lab, _fmt(v)] for lab, v in zip(labels, values, strict=True)]
    )
    return _frame(title, summary, _axes(scale, labels) + "".join(bars), table)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int | float]]],
    *,
    empty: str,
    summary: str = "",
) -> Markup:
    assert 0 < len(series) <= SERIES_MAX
    assert all(len(values) == len(labels) for _, values in series)
    top = max((float(v) for _, values in series for v in values), default=0.0)
    if not labels or top <= 0:
        return empty_chart(title, empty)
    scale = _value_axis(top, all(_whole(values) for _, values in series))
    top = scale.top
    x0, x1 = scale.x0, WIDTH - PAD_END
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    n = len(labels)
    lines = []
    for k, (name, values) in enumerate(series):
        points = " ".join(
            f"{x0 + (x1 - x0) * (i + 0.5) / n:.1f},{y0 - (y0 - y1) * float(v) / top:.1f}"
            for i, v in enumerate(values)
        )
        lines.append(
            f'<polyline class="line line-{k}" points="{points}"><title>{escape(name)}'
            "</title></polyline>"
        )
        if n <= MARKERS_MAX:  # a lone day is a point, not an invisible line
            lines.extend(
                f'<circle class="line-{k}" r=3 cx="{x0 + (x1 - x0) * (i + 0.5) / n:.1f}" '
                f'cy="{y0 - (y0 - y1) * float(v) / top:.1f}" />'
                for i, v in enumerate(values)
            )
    legend = "".join(
        f'<text class="legend line-{k}" x="{x0 + 8 + 150 * k:.1f}" y={PAD_TOP + 12}>'
        f"■ {escape(name)}</text>"
        for k, (name, _) in enumerate(series)
    )
    table = _table(
        title,
        ["", *[name for name, _ in series]],
        [[labels[i], *[_fmt(values[i]) for _, values in series]] for i in range(n)],
    )
    return _frame(title, summary, _axes(scale, labels) + "".join(lines) + legend, table)


def lorenz_chart(
    title: str,
    points: Sequence[tuple[float, float]],
    *,
    x_name: str,
    y_name: str,
    empty: str,
    summary: str = "",
) -> Markup:
    """The Lorenz curve against the line of equality (the diagonal)."""
    if len(points) < 2:
        return empty_chart(title, empty)
    x0, x1 = PAD_START, WIDTH - PAD_END
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP

    def at(x: float, y: float) -> str:
        return f"{x0 + (x1 - x0) * x:.1f},{y0 - (y0 - y1) * y:.1f}"

    curve = " ".join(at(x, y) for x, y in points)
    inner = (
        f"<line class=axis x1={x0} y1={y0} x2={x1} y2={y0} />"
        f"<line class=axis x1={x0} y1={y0} x2={x0} y2={y1} />"
        f'<polyline class="line equality" points="{at(0, 0)} {at(1, 1)}" />'
        f'<polygon class=lorenz-gap points="{curve} {at(1, 1)}" />'
        f'<polyline class="line line-0" points="{curve}" />'
        f"<text class=tick x={x0} y={HEIGHT - 12}>0%</text>"
        f"<text class=tick x={x1} y={HEIGHT - 12} text-anchor=end>100% {escape(x_name)}</text>"
        f"<text class=tick x={x0 - 6} y={y1 + 4} text-anchor=end>100%</text>"
    )
    table = _table(
        title,
        [x_name, y_name],
        [[f"{x:.0%}", f"{y:.1%}"] for x, y in points],
    )
    return _frame(title, summary, inner, table)
