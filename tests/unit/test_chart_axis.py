"""A chart's value axis: round steps, whole steps for whole things, a top above the data, and
room for the widest label (issue #18: "5,366.67" shown for 35,366.67, 0.67 of a creator)."""

from __future__ import annotations

import re

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
