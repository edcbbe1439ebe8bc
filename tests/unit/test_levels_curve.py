"""The gifter level curve: monotone, exact at each threshold, bounded, checked at start."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from giftwave.config import LEVELS, Settings
from giftwave.social.levels import Curve, geometric_thresholds

DEFAULT = Curve.configured(())


def test_default_curve_is_published_shape() -> None:
    thresholds = geometric_thresholds()
    assert len(thresholds) == LEVELS
    assert thresholds[0] == 1
    assert thresholds[-1] == 5_000_000
    assert all(a < b for a, b in itertools.pairwise(thresholds))
    assert DEFAULT.thresholds == tuple(thresholds)


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=0, max_value=10**12))
def test_level_is_monotone_and_bounded(a: int, b: int) -> None:
    low, high = sorted((a, b))
    assert 0 <= DEFAULT.level(low) <= DEFAULT.level(high) <= LEVELS


@given(st.integers(min_value=1, max_value=LEVELS))
def test_level_at_its_threshold_exactly(level: int) -> None:
    coins = DEFAULT.threshold(level)
    assert DEFAULT.level(coins) == level
    assert DEFAULT.level(coins - 1) == level - 1


@given(
    st.lists(st.integers(min_value=1, max_value=10**6), min_size=LEVELS, max_size=LEVELS),
    st.integers(min_value=0, max_value=10**9),
)
def test_any_increasing_curve_progress(steps: list[int], coins: int) -> None:
    thresholds = [sum(steps[: i + 1]) for i in range(LEVELS)]
    curve = Curve(thresholds)
    p = curve.progress(coins, coins)
    assert p.level == sum(1 for t in thresholds if t <= coins)
    if p.level == LEVELS:
        assert p.next_level is None
        assert p.coins_to_next is None
    else:
        assert p.next_level == p.level + 1
        assert p.coins_to_next is not None
        assert p.coins_to_next > 0
        assert curve.level(coins + p.coins_to_next) == p.level + 1
        assert curve.level(coins + p.coins_to_next - 1) == p.level


def test_level_stands_on_the_peak_and_the_way_on_the_coins() -> None:
    p = DEFAULT.progress(coins=5, peak_coins=12)  # 7 coins of it were reversed
    assert p.level == DEFAULT.level(12) == 9
    assert p.next_level_coins == 17
    assert p.coins_to_next == 12


@pytest.mark.parametrize(
    ("thresholds", "says"),
    [
        ([1, 2], "50 thresholds"),
        ([0, *range(1, 50)], "at least 1 coin"),
        ([*range(1, 50), 49], "level 50 needs more coins than level 49"),
        ([*range(1, 50), 2**60], "at most"),
    ],
)
def test_bad_curve_refused_at_start(
    monkeypatch: pytest.MonkeyPatch, thresholds: list[int], says: str
) -> None:
    monkeypatch.setenv("GIFTWAVE_LEVEL_THRESHOLDS_COINS", str(thresholds))
    with pytest.raises(ValidationError, match="level_thresholds_coins") as info:
        Settings()
    assert says in str(info.value)
    with pytest.raises(ValueError, match=says):
        Curve(thresholds)


def test_configured_curve_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    thresholds = [10 * (i + 1) for i in range(LEVELS)]
    monkeypatch.setenv("GIFTWAVE_LEVEL_THRESHOLDS_COINS", str(thresholds))
    curve = Curve.configured(Settings().level_thresholds_coins)
    assert curve.level(25) == 2
    assert curve.threshold(LEVELS) == 500


def test_the_published_table_is_the_default_curve() -> None:
    economy = (Path(__file__).parents[2] / "docs" / "economy.md").read_text()
    section = economy.split("## Gifter levels", 1)[1].split("\n## ", 1)[0]
    pairs = re.findall(r"\| (\d+): ([\d,]+) ", section)
    published = [(int(level), int(coins.replace(",", ""))) for level, coins in pairs]
    assert published == [(i + 1, c) for i, c in enumerate(geometric_thresholds())]
