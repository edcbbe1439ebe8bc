"""Gifter levels, pure: lifetime coins gifted → a level 1..50 on a published curve.

    thresholds (coins)   1   2   3 … 3,600,000   5,000,000
    level                1   2   3 …        49          50

A level is reached when the lifetime coins reach its threshold; below the first threshold (no
coin gifted yet) the level is 0, which no screen shows. The curve is the operator's
(``GIFTWAVE_LEVEL_THRESHOLDS_COINS``, checked at start); the default is geometric, two
significant digits, from 1 coin to 5,000,000 (docs/economy.md has the table).

A level is never taken back: a reversed gift lowers the exact lifetime coins, but the level
stands on the highest total the person ever reached (``peak_coins``). The next level is reached
when the exact coins reach its threshold again.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from giftwave.config import LEVELS, level_thresholds_problem

DEFAULT_TOP_COINS: Final = 5_000_000


def _two_digits(x: float) -> int:
    """``x`` rounded to two significant digits (12,345 → 12,000)."""
    step = 10 ** max(0, math.floor(math.log10(x)) - 1)
    return int(round(x / step) * step)


def geometric_thresholds(top_coins: int = DEFAULT_TOP_COINS, levels: int = LEVELS) -> list[int]:
    """1 coin for level 1 up to ``top_coins`` for the last, each level a constant factor
    above the one before, two significant digits, strictly increasing."""
    assert levels >= 2
    assert top_coins >= levels
    out: list[int] = []
    for n in range(levels):
        coins = _two_digits(top_coins ** (n / (levels - 1)))
        out.append(max(coins, out[-1] + 1) if out else coins)
    return out


@dataclass(frozen=True, slots=True)
class Progress:
    """Where a person stands: their level, their exact coins, and the next level's way."""

    level: int  # 0: nothing gifted yet
    coins: int  # lifetime coins gifted, net of reversals
    next_level: int | None  # None at the top
    next_level_coins: int | None  # the next level's threshold
    coins_to_next: int | None  # coins still to gift to reach it


class Curve:
    """The published curve: ``thresholds[i]`` coins reach level ``i + 1``."""

    __slots__ = ("thresholds",)

    def __init__(self, thresholds: Sequence[int]) -> None:
        problem = level_thresholds_problem(thresholds)
        if problem is not None:
            raise ValueError(problem)
        self.thresholds: tuple[int, ...] = tuple(thresholds)

    @classmethod
    def configured(cls, thresholds: Sequence[int]) -> Curve:
        """The operator's curve, or the default when the setting is empty."""
        return cls(thresholds or geometric_thresholds())

    def level(self, coins: int) -> int:
        """The level ``coins`` lifetime coins reach (0 below the first threshold)."""
        return bisect_right(self.thresholds, coins)

    def threshold(self, level: int) -> int:
        assert 1 <= level <= LEVELS
        return self.thresholds[level - 1]

    def progress(self, coins: int, peak_coins: int) -> Progress:
        """The level stands on the peak; the way to the next is counted from the exact coins."""
        assert peak_coins >= coins
        level = self.level(peak_coins)
        if level >= LEVELS:
            return Progress(level, coins, None, None, None)
        nxt = self.thresholds[level]
        return Progress(level, coins, level + 1, nxt, nxt - coins)
