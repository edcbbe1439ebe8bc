"""A bar per day, laid out for an inline SVG the server renders (no chart script in the page).

Geometry only, in the SVG's own units: the template draws it, names it for screen readers
and puts the same numbers in a table beside it. Right-to-left pages get the time axis mirrored
(the first day on the right) and the value labels on the right, where their reading starts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Final

from giftwave.web import axis

WIDTH: Final = 960
HEIGHT: Final = 220
LABELS_W: Final = 56  # the value labels' column, on the reading side: at least this wide
VALUE_FONT_PX: Final = 15  # studio.css, .chart text
EDGE: Final = 8
TOP: Final = 12
BASELINE: Final = 188
DAY_LABEL_Y: Final = 210
BAR_SHARE: Final = 0.7  # of a day's slot; the rest is the gap between bars
MAX_DAYS: Final = 366


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
    labels_w = max(LABELS_W, axis.label_width_px(f"{top:,}", font_px=VALUE_FONT_PX) + 2 * EDGE)
    plot_start = EDGE if rtl else labels_w
    plot_end = WIDTH - labels_w if rtl else WIDTH - EDGE
    slot = (plot_end - plot_start) / days
    scale = (BASELINE - TOP) / top
    # Half the top only where it is a whole number: never "2" between 0 and 5 on a days' axis.
    tick_values = sorted({0, top // 2, top}) if top % 2 == 0 else [0, top]

    def slot_x(i: int) -> float:
        return plot_end - (i + 1) * slot if rtl else plot_start + i * slot

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
                x=round(slot_x(i) + slot * (1 - BAR_SHARE) / 2, 2),
                y=round(BASELINE - height, 2),
                width=round(max(1.0, slot * BAR_SHARE), 2),
                height=round(height, 2),
                today=day == today,
            )
        )
    labelled = sorted({0, days // 2, days - 1})
    return DayChart(
        width=WIDTH,
        height=HEIGHT,
        plot_start=plot_start,
        plot_end=plot_end,
        baseline=BASELINE,
        value_label_x=WIDTH - labels_w / 2 if rtl else labels_w / 2,
        day_label_y=DAY_LABEL_Y,
        bars=bars,
        ticks=[Tick(v, round(BASELINE - v * scale, 2)) for v in tick_values],
        day_labels=[
            DayLabel(first + timedelta(days=i), round(_clamped(slot_x(i) + slot / 2), 2))
            for i in labelled
        ],
        best=max(bars, key=lambda b: b.value, default=None),
    )


def _clamped(x: float) -> float:
    # A day label is centred under its bar, but never cut off at the chart's edge.
    half_label = 48
    return min(max(x, half_label), WIDTH - half_label)
