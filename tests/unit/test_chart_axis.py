"""A chart's value axis: round steps, whole steps for whole things, a top above the data, and
room for the widest label (issue #18: "5,366.67" shown for 35,366.67, 0.67 of a creator)."""

from __future__ import annotations

import re
from datetime import date

import pytest

from giftwave.web import axis, charts


@pytest.mark.parametrize(
    ("top", "integer", "expected"),
    [
        (35_366.67, False, [0, 10_000, 20_000, 30_000, 40_000]),
        (2, True, [0, 1, 2]),  # two creators: never 0.67 of one
        (1, True, [0, 1]),
        (7, True, [0, 2, 4, 6, 8]),
        (1_672, True, [0, 500, 1_000, 1_500, 2_000]),
        (0.37, False, [0, 0.1, 0.2, 0.3, 0.4]),
        (0.9, False, [0, 0.25, 0.5, 0.75, 1]),
    ],
)
def test_ticks_are_round_steps_from_zero_to_a_top_above_the_data(
    top: float, integer: bool, expected: list[float]
) -> None:
    assert axis.ticks(top, integer=integer) == expected


def test_whole_things_get_whole_steps_and_every_axis_has_few_ticks() -> None:
    for top in (1, 2, 3, 5, 9, 11, 99, 101, 12_345, 10**9):
        found = axis.ticks(top, integer=True)
        assert all(t == int(t) for t in found), (top, found)
        assert 2 <= len(found) <= axis.MOST_TICKS + 1, (top, found)
        assert found[-1] >= top


def _tick_labels(svg: str) -> list[tuple[float, str]]:
    return [
        (float(x), text)
        for x, text in re.findall(
            r'<text class=tick x="([\d.]+)" y="[\d.]+" text-anchor=end>([^<]*)<', svg
        )
    ]


def test_a_bar_chart_of_creators_has_whole_ticks_and_a_wide_one_makes_room_for_its_labels() -> None:
    creators = str(charts.bar_chart("Creators", ["a", "b"], [2, 1], value_name="n", empty="-"))
    assert [t for _, t in _tick_labels(creators)] == ["1", "2"]
    coins = str(charts.line_chart("Coins", ["d"], [("spent", [35_366.67])], empty="-"))
    labels = _tick_labels(coins)
    assert [t for _, t in labels] == ["10,000", "20,000", "30,000", "40,000"]
    huge = str(charts.bar_chart("Coins", ["d"], [123_456_789], value_name="n", empty="-"))
    for x, text in _tick_labels(huge):  # the label, right-aligned at x, starts inside the chart
        assert x - axis.label_width_px(text, font_px=charts.TICK_FONT_PX) >= 0, text


def _numbers(pattern: str, svg: str) -> list[float]:
    return [float(x) for x in re.findall(pattern, svg)]


def test_right_to_left_mirrors_every_chart_as_the_studio_one() -> None:
    """One rule for every chart (issue 21): on a right-to-left page the first day, or the first
    share of people, is on the right and the value labels stand right of the plot."""
    for rtl in (False, True):
        bars = str(charts.bar_chart("n", ["a", "b"], [1, 2], value_name="n", empty="-", rtl=rtl))
        first, second = _numbers(r'<rect class=bar x="([\d.]+)"', bars)
        assert (first > second) is rtl
        lines = str(charts.line_chart("n", ["a", "b"], [("s", [1, 2])], empty="-", rtl=rtl))
        first, second = _numbers(r'<circle class="line-0" r=3 cx="([\d.]+)"', lines)
        assert (first > second) is rtl
        for svg in (bars, lines):
            found = re.search(r'<line class=axis x1="([\d.]+)" y1=\d+ x2="([\d.]+)"', svg)
            assert found is not None
            plot_start, plot_end = float(found[1]), float(found[2])
            anchor = "start" if rtl else "end"
            values = _numbers(
                rf'<text class=tick x="([\d.]+)" y="[\d.]+" text-anchor={anchor}>', svg
            )
            assert values, svg
            assert all(x > plot_end if rtl else x < plot_start for x in values), svg
        lorenz = str(
            charts.lorenz_chart("L", [(0, 0), (1, 1)], x_name="p", y_name="c", empty="-", rtl=rtl)
        )
        zero = _numbers(r'<text class=tick x="([\d.]+)" y=\d+ text-anchor=\w+>0%<', lorenz)[0]
        assert (zero > charts.WIDTH / 2) is rtl
    day = charts.day_chart(
        {date(2026, 11, 1): 1, date(2026, 11, 2): 2},
        date(2026, 11, 1),
        date(2026, 11, 2),
        today=date(2026, 11, 2),
        rtl=True,
    )
    assert day.bars[0].x > day.bars[1].x  # the same rule as above
