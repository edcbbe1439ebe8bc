"""Server-rendered SVG charts, each with its data beside it for those who cannot see it.

Two kinds: the economy pages' bars, lines and Lorenz curve, drawn here as a whole ``<figure>``
(an ``<svg role="img">`` with an ``aria-label``, the title and what the chart says in a
sentence, and the same numbers in a ``<table>`` inside ``<details>``; colours are the site's CSS
variables, classes styled in economy.css; text escaped here); and the studio's bar per day
(``day_chart``), geometry only, which its template draws, names and tables.

One right-to-left rule for both (``_plot_span``, ``_slot_left``): on a right-to-left page the
plot is mirrored, as the page is: the first day (or the first share of people) on the right,
the value labels on the right, where reading starts. The text inside the SVG stays
left-to-right (SVG's ``direction``, which HTML's ``dir`` does not set there: an inherited
right-to-left would turn every ``text-anchor`` around); the anchors are mirrored here instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
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

# The studio's bar per day (``day_chart``).
DAY_WIDTH: Final = 960
DAY_HEIGHT: Final = 220
DAY_LABELS_W: Final = 56  # the value labels' column, on the reading side: at least this wide
DAY_VALUE_FONT_PX: Final = 15  # studio.css, .chart text
DAY_EDGE: Final = 8
DAY_TOP: Final = 12
DAY_BASELINE: Final = 188
DAY_LABEL_Y: Final = 210
DAY_BAR_SHARE: Final = 0.7  # of a day's slot; the rest is the gap between bars
MAX_DAYS: Final = 366


def _plot_span(width: float, labels_w: float, edge: float, rtl: bool) -> tuple[float, float]:
    """The plot's left and right edges: the value labels' column on the reading side."""
    return (edge, width - labels_w) if rtl else (labels_w, width - edge)


def _slot_left(i: int, n: int, start: float, end: float, rtl: bool) -> float:
    """The left edge of the ``i``-th of ``n`` equal slots from ``start`` to ``end``: the
    first on the reading side (time runs the way the page reads)."""
    slot = (end - start) / n
    return end - (i + 1) * slot if rtl else start + i * slot


def _slot_mid(i: int, n: int, start: float, end: float, rtl: bool) -> float:
    """The middle of that slot."""
    return end - (end - start) * (i + 0.5) / n if rtl else start + (end - start) * (i + 0.5) / n


def _anchor(anchor: str, rtl: bool) -> str:
    """A ``text-anchor`` written for left-to-right, mirrored for a right-to-left plot."""
    return {"start": "end", "end": "start"}.get(anchor, anchor) if rtl else anchor


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
    labels_w: float  # the value labels' column: the widest label and a gap each side


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


def _axes(values: _ValueAxis, labels: Sequence[str], x0: float, x1: float, rtl: bool) -> str:
    """The frame, a gridline at each round tick with its value, and up to six x labels."""
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    label_x = x1 + TICK_GAP_PX if rtl else x0 - TICK_GAP_PX
    parts = [f'<line class=axis x1="{x0:.1f}" y1={y0} x2="{x1:.1f}" y2={y0} />']
    for tick, label in zip(values.ticks[1:], values.labels[1:], strict=True):
        y = y0 - (y0 - y1) * tick / values.top
        parts.append(f'<line class=grid x1="{x0:.1f}" y1="{y:.1f}" x2="{x1:.1f}" y2="{y:.1f}" />')
        parts.append(
            f'<text class=tick x="{label_x:.1f}" y="{y + 4:.1f}" '
            f"text-anchor={_anchor('end', rtl)}>{escape(label)}</text>"
        )
    n = len(labels)
    if n:
        step = max(1, -(-n // 6))
        for i in range(0, n, step):
            x = _slot_mid(i, n, x0, x1, rtl)
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
    rtl: bool = False,
) -> Markup:
    assert len(labels) == len(values)
    if not values or max(values) <= 0:
        return empty_chart(title, empty)
    labels, values = labels[-POINTS_MAX:], values[-POINTS_MAX:]
    scale = _value_axis(float(max(values)), _whole(values))
    top = scale.top
    x0, x1 = _plot_span(WIDTH, scale.labels_w, PAD_END, rtl)
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    slot = (x1 - x0) / len(values)
    bars = []
    for i, v in enumerate(values):
        h = (y0 - y1) * max(0.0, float(v)) / top
        x = _slot_left(i, len(values), x0, x1, rtl) + slot * 0.1
        bars.append(
            f'<rect class=bar x="{x:.1f}" y="{y0 - h:.1f}" '
            f'width="{max(slot * 0.8, 0.5):.1f}" height="{h:.1f}"><title>'
            f"{escape(labels[i])}: {escape(_fmt(v))}</title></rect>"
        )
    table = _table(
        title, ["", value_name], [[lab, _fmt(v)] for lab, v in zip(labels, values, strict=True)]
    )
    return _frame(title, summary, _axes(scale, labels, x0, x1, rtl) + "".join(bars), table)


def line_chart(
    title: str,
    labels: Sequence[str],
    series: Sequence[tuple[str, Sequence[int | float]]],
    *,
    empty: str,
    summary: str = "",
    rtl: bool = False,
) -> Markup:
    assert 0 < len(series) <= SERIES_MAX
    assert all(len(values) == len(labels) for _, values in series)
    top = max((float(v) for _, values in series for v in values), default=0.0)
    if not labels or top <= 0:
        return empty_chart(title, empty)
    scale = _value_axis(top, all(_whole(values) for _, values in series))
    top = scale.top
    x0, x1 = _plot_span(WIDTH, scale.labels_w, PAD_END, rtl)
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP
    n = len(labels)
    xs = [_slot_mid(i, n, x0, x1, rtl) for i in range(n)]
    lines = []
    for k, (name, values) in enumerate(series):
        ys = [y0 - (y0 - y1) * float(v) / top for v in values]
        points = " ".join(f"{x:.1f},{y:.1f}" for x, y in zip(xs, ys, strict=True))
        lines.append(
            f'<polyline class="line line-{k}" points="{points}"><title>{escape(name)}'
            "</title></polyline>"
        )
        if n <= MARKERS_MAX:  # a lone day is a point, not an invisible line
            lines.extend(
                f'<circle class="line-{k}" r=3 cx="{x:.1f}" cy="{y:.1f}" />'
                for x, y in zip(xs, ys, strict=True)
            )
    legend = "".join(
        f'<text class="legend line-{k}" x="{x1 - 8 - 150 * k if rtl else x0 + 8 + 150 * k:.1f}" '
        f"y={PAD_TOP + 12}{' text-anchor=end' if rtl else ''}>"
        # The swatch first where reading starts: right of the name on a right-to-left page.
        f"{f'{escape(name)} ■' if rtl else f'■ {escape(name)}'}</text>"
        for k, (name, _) in enumerate(series)
    )
    table = _table(
        title,
        ["", *[name for name, _ in series]],
        [[labels[i], *[_fmt(values[i]) for _, values in series]] for i in range(n)],
    )
    return _frame(
        title, summary, _axes(scale, labels, x0, x1, rtl) + "".join(lines) + legend, table
    )


def lorenz_chart(
    title: str,
    points: Sequence[tuple[float, float]],
    *,
    x_name: str,
    y_name: str,
    empty: str,
    summary: str = "",
    rtl: bool = False,
) -> Markup:
    """The Lorenz curve against the line of equality (the diagonal)."""
    if len(points) < 2:
        return empty_chart(title, empty)
    x0, x1 = _plot_span(WIDTH, PAD_START, PAD_END, rtl)
    y0, y1 = HEIGHT - PAD_BOTTOM, PAD_TOP

    def at_x(x: float) -> float:  # the share of people, from the reading side
        return x1 - (x1 - x0) * x if rtl else x0 + (x1 - x0) * x

    def at(x: float, y: float) -> str:
        return f"{at_x(x):.1f},{y0 - (y0 - y1) * y:.1f}"

    curve = " ".join(at(x, y) for x, y in points)
    zero, whole = at_x(0), at_x(1)
    inner = (
        f'<line class=axis x1="{x0:.1f}" y1={y0} x2="{x1:.1f}" y2={y0} />'
        f'<line class=axis x1="{zero:.1f}" y1={y0} x2="{zero:.1f}" y2={y1} />'
        f'<polyline class="line equality" points="{at(0, 0)} {at(1, 1)}" />'
        f'<polygon class=lorenz-gap points="{curve} {at(1, 1)}" />'
        f'<polyline class="line line-0" points="{curve}" />'
        f'<text class=tick x="{zero:.1f}" y={HEIGHT - 12} text-anchor={_anchor("start", rtl)}>'
        "0%</text>"
        f'<text class=tick x="{whole:.1f}" y={HEIGHT - 12} text-anchor={_anchor("end", rtl)}>'
        f"100% {escape(x_name)}</text>"
        f'<text class=tick x="{zero + 6 if rtl else zero - 6:.1f}" y={y1 + 4} '
        f"text-anchor={_anchor('end', rtl)}>100%</text>"
    )
    table = _table(
        title,
        [x_name, y_name],
        [[f"{x:.0%}", f"{y:.1%}"] for x, y in points],
    )
    return _frame(title, summary, inner, table)


# --- the studio's bar per day: geometry for its template ----------------------------------


@dataclass(frozen=True, slots=True)
class Bar:
    day: date
    value: int
    x: float
    y: float
    width: float
    height: float
    today: bool


@dataclass(frozen=True, slots=True)
class Tick:
    value: int
    y: float


@dataclass(frozen=True, slots=True)
class DayLabel:
    day: date
    x: float


@dataclass(frozen=True, slots=True)
class DayChart:
    width: int
    height: int
    plot_start: float  # the plot's left edge
    plot_end: float  # and its right edge
    baseline: float
    value_label_x: float
    day_label_y: float
    bars: list[Bar]  # the days with a value, oldest first
    ticks: list[Tick]  # the value axis: 0, half and the top
    day_labels: list[DayLabel]  # the first, middle and last days
    best: Bar | None


def nice_ceiling(n: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... not below ``n``: a top the eye can read."""
    step = 1
    while True:
        for m in (1, 2, 5):
            if step * m >= n:
                return step * m
        step *= 10


def day_chart(
    values: dict[date, int], first: date, last: date, *, today: date, rtl: bool
) -> DayChart:
    """Bars for the days ``first``..``last`` (inclusive); a day without a value has none."""
    days = (last - first).days + 1
    assert 1 <= days <= MAX_DAYS, (first, last)
    top = nice_ceiling(max([1, *values.values()]))
    # Wide enough for the top's label ("1,000,000" is not cut to "000,000").
    labels_w = max(
        DAY_LABELS_W, axis.label_width_px(f"{top:,}", font_px=DAY_VALUE_FONT_PX) + 2 * DAY_EDGE
    )
    plot_start, plot_end = _plot_span(DAY_WIDTH, labels_w, DAY_EDGE, rtl)
    slot = (plot_end - plot_start) / days
    scale = (DAY_BASELINE - DAY_TOP) / top
    # Half the top only where it is a whole number: never "2" between 0 and 5 on a days' axis.
    tick_values = sorted({0, top // 2, top}) if top % 2 == 0 else [0, top]

    bars = []
    for i in range(days):
        day = first + timedelta(days=i)
        value = values.get(day, 0)
        if value <= 0:
            continue
        height = max(1.0, value * scale)  # a day that earned a little still shows
        bars.append(
            Bar(
                day=day,
                value=value,
                x=round(
                    _slot_left(i, days, plot_start, plot_end, rtl) + slot * (1 - DAY_BAR_SHARE) / 2,
                    2,
                ),
                y=round(DAY_BASELINE - height, 2),
                width=round(max(1.0, slot * DAY_BAR_SHARE), 2),
                height=round(height, 2),
                today=day == today,
            )
        )
    labelled = sorted({0, days // 2, days - 1})
    return DayChart(
        width=DAY_WIDTH,
        height=DAY_HEIGHT,
        plot_start=plot_start,
        plot_end=plot_end,
        baseline=DAY_BASELINE,
        value_label_x=DAY_WIDTH - labels_w / 2 if rtl else labels_w / 2,
        day_label_y=DAY_LABEL_Y,
        bars=bars,
        ticks=[Tick(v, round(DAY_BASELINE - v * scale, 2)) for v in tick_values],
        day_labels=[
            DayLabel(
                first + timedelta(days=i),
                round(_clamped(_slot_left(i, days, plot_start, plot_end, rtl) + slot / 2), 2),
            )
            for i in labelled
        ],
        best=max(bars, key=lambda b: b.value, default=None),
    )


def _clamped(x: float) -> float:
    # A day label is centred under its bar, but never cut off at the chart's edge.
    half_label = 48
    return min(max(x, half_label), DAY_WIDTH - half_label)
