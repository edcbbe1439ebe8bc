"""The rounding rule (economy/rounding.py), property-tested: rows always add up to their total,
each row is its exact value rounded down or up, and a payout's diamonds are worth exactly its
cents with less than one step left over (docs/economy.md, "Cents")."""

from __future__ import annotations

from fractions import Fraction

from hypothesis import given
from hypothesis import strategies as st

from giftwave.economy.rounding import (
    MICROS_PER_CENT,
    apportion_cents,
    floor_cents,
    min_payout_diamonds,
    payout_step,
    quote,
)

values = st.integers(min_value=1, max_value=1_000_000)  # GIFTWAVE_DIAMOND_VALUE_USD_MICROS
diamonds = st.integers(min_value=0, max_value=10**12)


@given(st.lists(diamonds, max_size=60), values)
def test_rows_add_up_to_the_total_and_each_is_its_value_rounded(
    rows: list[int], value: int
) -> None:
    cents = apportion_cents(rows, value)
    assert len(cents) == len(rows)
    assert sum(cents) == floor_cents(sum(rows), value)
    for d, c in zip(rows, cents, strict=True):
        exact = Fraction(d * value, MICROS_PER_CENT)
        assert c in (int(exact), int(exact) + 1), (d, c)
        if exact.denominator == 1:
            assert c == exact  # a whole number of cents is never moved


@given(st.lists(diamonds, max_size=60), values)
def test_apportioning_is_deterministic_and_never_against_a_row_in_aggregate(
    rows: list[int], value: int
) -> None:
    assert apportion_cents(rows, value) == apportion_cents(list(rows), value)
    # The total shown is the exact value floored: less than a cent below it, never above.
    total = Fraction(sum(rows) * value, MICROS_PER_CENT)
    assert 0 <= total - sum(apportion_cents(rows, value)) < 1


def test_the_issue_example() -> None:
    # Three streams of 3, 1 and 1 diamonds at half a cent: floored, 1 + 0 + 0 beside 2.
    assert apportion_cents([3, 1, 1], 5_000) == [2, 0, 0]
    assert apportion_cents([1, 3, 1], 5_000) == [1, 1, 0]
    assert apportion_cents([], 5_000) == []


@given(diamonds, values)
def test_a_payout_reserves_exactly_what_its_cents_are_worth(asked: int, value: int) -> None:
    reserved, cents = quote(asked, value)
    step_diamonds, _ = payout_step(value)
    assert 0 <= reserved <= asked
    assert reserved * value == cents * MICROS_PER_CENT  # no fraction of a cent taken
    assert asked - reserved < step_diamonds  # what stays is less than one step


@given(st.integers(min_value=1, max_value=10**9), values)
def test_the_minimum_is_the_first_request_worth_it(min_cents: int, value: int) -> None:
    least = min_payout_diamonds(min_cents, value)
    assert quote(least, value)[1] >= min_cents
    assert quote(least - 1, value)[1] < min_cents


def test_payout_examples_at_half_a_cent() -> None:
    assert payout_step(5_000) == (2, 1)
    assert quote(10_001, 5_000) == (10_000, 5_000)
    assert quote(180_001, 5_000) == (180_000, 90_000)
    assert min_payout_diamonds(5_000, 5_000) == 10_000
    # A value that is not a fraction of a cent with a small denominator: 3,333 millionths.
    assert payout_step(3_333) == (10_000, 3_333)
    assert quote(25_000, 3_333) == (20_000, 6_666)
