"""The earnings chart's geometry: a bar for each day that earned, as tall as its share of a
readable top, in time order from the reading side (mirrored in Arabic)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from giftwave.web.charts import DAY_BASELINE, DAY_TOP, day_chart, nice_ceiling

FIRST = date(2026, 11, 1)
LAST = date(2026, 11, 30)


@pytest.mark.parametrize(
    ("n", "top"), [(0, 1), (1, 1), (3, 5), (7, 10), (10, 10), (11, 20), (30_006, 50_000)]
)
def test_the_value_axis_tops_out_at_a_round_number(n: int, top: int) -> None:
    assert nice_ceiling(n) == top


def test_days_that_earned_get_bars_in_time_order_and_today_stands_out() -> None:
    values = {FIRST: 10, FIRST + timedelta(days=3): 40, LAST: 5}
    chart = day_chart(values, FIRST, LAST, today=LAST, rtl=False)
    assert [b.day for b in chart.bars] == sorted(values)
    xs = [b.x for b in chart.bars]
    assert xs == sorted(xs)
    assert all(chart.plot_start <= b.x and b.x + b.width <= chart.plot_end for b in chart.bars)
    assert [b.today for b in chart.bars] == [False, False, True]
    tallest = chart.best
    assert tallest is not None
    assert tallest.value == 40
    assert tallest.y == pytest.approx(DAY_TOP + (DAY_BASELINE - DAY_TOP) * (1 - 40 / 50))
    assert all(b.y + b.height == pytest.approx(DAY_BASELINE) for b in chart.bars)
    assert [t.value for t in chart.ticks] == [0, 25, 50]
    assert [label.day for label in chart.day_labels] == [FIRST, FIRST + timedelta(days=15), LAST]


def test_right_to_left_mirrors_the_time_axis() -> None:
    values = {FIRST: 10, LAST: 20}
    ltr = day_chart(values, FIRST, LAST, today=LAST, rtl=False)
    rtl = day_chart(values, FIRST, LAST, today=LAST, rtl=True)
    assert ltr.bars[0].x < ltr.bars[1].x
    assert rtl.bars[0].x > rtl.bars[1].x  # the first day on the right
    assert ltr.value_label_x < ltr.plot_start
    assert rtl.value_label_x > rtl.plot_end  # the value labels where reading starts


def test_a_period_without_earnings_has_no_bars_and_a_day_with_little_still_shows() -> None:
    empty = day_chart({}, FIRST, LAST, today=LAST, rtl=False)
    assert empty.bars == []
    assert empty.best is None
    tiny = day_chart({FIRST: 1, LAST: 1_000_000}, FIRST, LAST, today=LAST, rtl=False)
    assert tiny.bars[0].height >= 1
