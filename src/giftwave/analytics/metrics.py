"""The health figures as pure functions of plain numbers: Gini, shares, percentiles, Lorenz.

Every function accepts an empty input and answers the figure's empty value (0, or an empty
curve), never an error: an economy with no gifts yet is a normal state.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def gini(values: Sequence[int]) -> float:
    """The Gini coefficient of non-negative amounts: 0 when all are equal, towards 1 when one
    holds everything (exactly 1 - 1/n for one holder among n)."""
    xs = sorted(values)
    assert all(x >= 0 for x in xs), "amounts are never negative"
    total = sum(xs)
    n = len(xs)
    if n == 0 or total == 0:
        return 0.0
    weighted = sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1))
    return weighted / (n * total)


def gini_from_sums(n: int, total: int, weighted: int) -> float:
    """``gini`` from the sums a database computes: n, Σx and Σ(2i - n - 1)·x (x ascending)."""
    if n == 0 or total == 0:
        return 0.0
    return weighted / (n * total)


def top_count(n: int, fraction: float) -> int:
    """How many make up the top ``fraction`` of n holders: at least one when there are any."""
    assert 0 < fraction <= 1
    return 0 if n == 0 else max(1, math.ceil(n * fraction - 1e-9))


def top_share(values: Sequence[int], fraction: float) -> float:
    """The share of the total held by the top ``fraction`` (0.01: the top 1%) of holders."""
    total = sum(values)
    if total == 0:
        return 0.0
    k = top_count(len(values), fraction)
    return sum(sorted(values, reverse=True)[:k]) / total


def top_n_share(values: Sequence[int], n: int) -> float:
    """The share of the total held by the ``n`` largest holders."""
    total = sum(values)
    if total == 0:
        return 0.0
    return sum(sorted(values, reverse=True)[:n]) / total


def percentile_rank(n: int, q: float) -> int:
    """The 0-based index, in ascending order, of the nearest-rank ``q`` percentile of n values."""
    assert 0 <= q <= 100
    assert n > 0
    return max(0, math.ceil(q / 100 * n) - 1)


def percentile(values: Sequence[int], q: float) -> int:
    """Nearest-rank percentile (an amount somebody actually has); 0 for no values."""
    if not values:
        return 0
    return sorted(values)[percentile_rank(len(values), q)]


def lorenz(values: Sequence[int], points: int = 20) -> list[tuple[float, float]]:
    """The Lorenz curve: (share of holders, share of the total they hold), poorest first, at
    ``points`` + 1 evenly spaced places from (0, 0) to (1, 1); empty for no amounts."""
    assert points >= 1
    xs = sorted(values)
    total = sum(xs)
    n = len(xs)
    if n == 0 or total == 0:
        return []
    prefix = [0]
    for x in xs:
        prefix.append(prefix[-1] + x)
    curve = []
    for p in range(points + 1):
        k = round(p * n / points)
        curve.append((p / points, prefix[k] / total))
    return curve


def rate(part: int, whole: int) -> float:
    """part / whole, 0 when there is no whole."""
    return part / whole if whole else 0.0
