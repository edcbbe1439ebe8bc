"""A chart's value axis: where its ticks go and how wide their labels are, pure.

Ticks are at round steps (1, 2, 2.5 or 5 times a power of ten) from zero to the first tick at
or above the largest value, at most ``most`` of them above zero; a series of whole things
(people, gifts, coins) gets whole steps only, so no axis reads "0.67 creators". The axis'
top is the last tick, so bars and lines are drawn against it, not against the largest value.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Final

STEP_FACTORS: Final = (1.0, 2.0, 2.5, 5.0, 10.0)
MOST_TICKS: Final = 4


def tick_step(top: float, *, integer: bool, most: int = MOST_TICKS) -> float:
    """The smallest round step that reaches ``top`` in ``most`` steps or fewer."""
    assert most >= 1
    if top <= 0:
        return 1.0
    raw = top / most
    magnitude = 10.0 ** math.floor(math.log10(raw))
    for factor in STEP_FACTORS:
        step = float(Decimal(str(factor)) * Decimal(str(magnitude)))
        if step >= raw * (1 - 1e-12) and (not integer or step.is_integer()):
            return max(step, 1.0) if integer else step
    raise AssertionError("unreachable: 10 x magnitude is >= raw")


def ticks(top: float, *, integer: bool, most: int = MOST_TICKS) -> list[float]:
    """0, step, 2 x step, ... up to the first tick at or above ``top``."""
    step = tick_step(top, integer=integer, most=most)
    count = max(1, math.ceil(top / step - 1e-9))
    return [_clean(step * i) for i in range(count + 1)]


def _clean(value: float) -> float:
    # 0.1 * 3 is 0.30000000000000004: round to the step's own precision.
    return float(f"{value:.10g}")


def decimals(values: list[float]) -> int:
    """Digits after the point that every tick label needs (0 for whole steps)."""
    needed = 0
    for v in values:
        text = f"{Decimal(str(v)).normalize():f}"
        if "." in text:
            needed = max(needed, len(text.split(".", 1)[1]))
    return needed


def label_width_px(label: str, *, font_px: float) -> float:
    """About how wide a number's label is: digits and separators at ~0.6 em each."""
    return len(label) * font_px * 0.6
