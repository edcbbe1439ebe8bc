"""The health figures' arithmetic on distributions whose answers are known."""

from __future__ import annotations

import random

import pytest

from giftwave.analytics.metrics import (
    bucket_from,
    exact_buckets,
    gini,
    gini_of_buckets,
    lorenz,
    lorenz_of_buckets,
    percentile,
    rate,
    top_count,
    top_n_share,
    top_share,
)


def test_gini_of_equal_amounts_is_zero() -> None:
    assert gini([7] * 50) == 0.0


def test_gini_of_one_holder_among_n_is_one_minus_one_over_n() -> None:
    assert gini([0] * 99 + [1000]) == pytest.approx(1 - 1 / 100)


def test_gini_of_a_uniform_ramp_is_a_third() -> None:
    # 1..n: G = (n - 1) / (3n), which tends to 1/3.
    n = 1000
    assert gini(list(range(1, n + 1))) == pytest.approx((n - 1) / (3 * n))


def test_gini_of_a_textbook_example() -> None:
    # Incomes 1, 2, 3, 4, 10: mean absolute difference / (2 * mean) = 0.4
    assert gini([10, 1, 4, 2, 3]) == pytest.approx(0.4)


def test_gini_matches_the_sorted_sum_formula() -> None:
    xs = sorted([5, 1, 1, 30, 99, 1, 500, 0])
    n = len(xs)
    weighted = sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1))
    assert gini(xs) == pytest.approx(weighted / (n * sum(xs)))


def test_buckets_keep_the_top_nine_bits() -> None:
    assert [bucket_from(x) for x in (1, 255, 511)] == [1, 255, 511]  # one amount each
    assert [bucket_from(x) for x in (512, 513, 514, 1023, 1024, 1027, 1028)] == [
        512,
        512,
        514,
        1022,
        1024,
        1024,
        1028,
    ]
    for x in (512, 10_007, 29_999 * 1_000, 2**40 + 12345):
        low = bucket_from(x)
        assert low <= x
        width = 1 << max(0, x.bit_length() - 9)
        assert x - low < width <= low / 256  # a bucket is at most 1/256 of its amounts wide


def _in_buckets(values: list[int]) -> list[tuple[int, int]]:
    grouped: dict[int, list[int]] = {}
    for x in values:
        grouped.setdefault(bucket_from(x), []).append(x)
    return [(len(grouped[b]), sum(grouped[b])) for b in sorted(grouped)]


def test_gini_and_lorenz_from_buckets_are_within_the_bucket_width() -> None:
    """A heavy-tailed population, as the economy report reads it: Gini from 1/256-wide buckets
    is never above the exact figure and at most 1/512 below it; Lorenz within the same."""
    rng = random.Random(7)
    for alpha in (1.1, 1.5, 3.0):
        values = [max(1, int(30 * rng.paretovariate(alpha))) for _ in range(20_000)]
        exact, approx = gini(values), gini_of_buckets(_in_buckets(values))
        assert exact - 1 / 512 <= approx <= exact + 1e-12
        for (x1, y1), (x2, y2) in zip(
            lorenz(values), lorenz_of_buckets(_in_buckets(values)), strict=True
        ):
            assert x1 == x2
            assert abs(y1 - y2) <= 1 / 256
    small = [rng.randrange(1, 512) for _ in range(5_000)]  # below 512: one amount per bucket
    assert gini_of_buckets(_in_buckets(small)) == pytest.approx(gini(small))
    assert exact_buckets([3, 1, 3]) == [(1, 1), (2, 6)]


def test_top_one_percent_share() -> None:
    # 200 gifters: the top 1% are 2 people holding 500 + 300 of 1,000 coins.
    values = [500, 300] + [1] * 198 + [0] * 0
    assert top_count(200, 0.01) == 2
    assert top_share(values, 0.01) == pytest.approx(800 / 998)
    assert top_count(3, 0.01) == 1  # at least one person when there is anyone
    assert top_n_share([5, 3, 2], 1) == pytest.approx(0.5)


def test_percentiles_are_nearest_rank() -> None:
    values = [15, 20, 35, 40, 50]
    assert percentile(values, 50) == 35
    assert percentile(values, 90) == 50
    assert percentile(values, 0) == 15
    assert percentile(list(range(1, 101)), 90) == 90


def test_lorenz_runs_from_zero_to_one_below_the_diagonal() -> None:
    curve = lorenz([1, 1, 1, 97], points=4)
    assert curve[0] == (0.0, 0.0)
    assert curve[-1] == (1.0, 1.0)
    assert curve[2] == (0.5, pytest.approx(0.02))
    assert all(y <= x for x, y in curve)


def test_empty_inputs_answer_empty_figures() -> None:
    assert gini([]) == 0.0
    assert gini([0, 0]) == 0.0
    assert top_share([], 0.01) == 0.0
    assert top_n_share([], 10) == 0.0
    assert percentile([], 50) == 0
    assert lorenz([]) == []
    assert rate(3, 0) == 0.0
    assert top_count(0, 0.01) == 0
