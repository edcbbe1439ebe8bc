"""The health figures' arithmetic on distributions whose answers are known."""

from __future__ import annotations

import pytest

from giftwave.analytics.metrics import (
    gini,
    gini_from_sums,
    lorenz,
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


def test_gini_from_database_sums_matches() -> None:
    xs = sorted([5, 1, 1, 30, 99, 1, 500])
    n = len(xs)
    weighted = sum((2 * i - n - 1) * x for i, x in enumerate(xs, start=1))
    assert gini_from_sums(n, sum(xs), weighted) == pytest.approx(gini(xs))


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
