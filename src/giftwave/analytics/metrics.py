"""The health figures as pure functions of plain numbers: Gini, shares, percentiles, Lorenz.

Every function accepts an empty input and answers the figure's empty value (0, or an empty
curve), never an error: an economy with no gifts yet is a normal state.

Gini and Lorenz are computed from *buckets*: (holders, their total) for disjoint ranges of
amounts, ascending. Buckets of one amount each give the exact figures (``gini``, ``lorenz``);
the economy report reads gifters in ``bucket_from`` buckets, at most 1/256 of their amounts
wide, so that it reads a few thousand rows however many gifters there are. Pairs in different
buckets are counted exactly; only differences inside a bucket are missed, so that Gini is low
by at most 1/512 (docs/analytics.md).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Final

# An amount's bucket keeps its top BUCKET_BITS bits: amounts below 2 ** BUCKET_BITS have one
# each, and a bucket is at most 1 / 2 ** (BUCKET_BITS - 1) of its amounts wide.
BUCKET_BITS: Final = 9
Bucket = tuple[int, int]  # (holders, their total)


def bucket_from(amount: int) -> int:
    """The smallest amount of ``amount``'s bucket (``amount`` itself below 512)."""
    assert amount >= 1
    shift = amount.bit_length() - BUCKET_BITS
    return amount if shift <= 0 else amount >> shift << shift


def exact_buckets(values: Iterable[int]) -> list[Bucket]:
    """One bucket per distinct amount, ascending: the figures from them are exact."""
    counts = Counter(values)
    assert all(x >= 0 for x in counts), "amounts are never negative"
    return [(counts[x], counts[x] * x) for x in sorted(counts)]


def gini(values: Sequence[int]) -> float:
    """The Gini coefficient of non-negative amounts: 0 when all are equal, towards 1 when one
    holds everything (exactly 1 - 1/n for one holder among n)."""
    return gini_of_buckets(exact_buckets(values))


def gini_of_buckets(buckets: Sequence[Bucket]) -> float:
    """G = Σ_{i<j} |xᵢ - xⱼ| / (n·Σx). Every member of a higher bucket has more than every
    member of a lower one, so the pairs across buckets add up exactly from the buckets' sizes
    and totals; pairs inside a bucket count as equal."""
    n = total = apart = 0
    for holders, amount in buckets:
        apart += amount * n - holders * total
        n += holders
        total += amount
    if n == 0 or total == 0:
        return 0.0
    return apart / (n * total)


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
    return lorenz_of_buckets(exact_buckets(values), points)


def lorenz_of_buckets(buckets: Sequence[Bucket], points: int = 20) -> list[tuple[float, float]]:
    """``lorenz`` from buckets; the poorest k holders of a bucket hold k/holders of its total."""
    assert points >= 1
    n = sum(holders for holders, _ in buckets)
    total = sum(amount for _, amount in buckets)
    if n == 0 or total == 0:
        return []
    curve = []
    i = people = held = 0  # buckets wholly below the point, their holders and total
    for p in range(points + 1):
        k = round(p * n / points)
        while i < len(buckets) and people + buckets[i][0] <= k:
            people += buckets[i][0]
            held += buckets[i][1]
            i += 1
        part = 0.0 if k == people else (k - people) * buckets[i][1] / buckets[i][0]
        curve.append((p / points, (held + part) / total))
    return curve


def rate(part: int, whole: int) -> float:
    """part / whole, 0 when there is no whole."""
    return part / whole if whole else 0.0
