"""How diamonds become cents: the one rounding rule, pure (docs/economy.md, "Cents").

Diamonds are whole; a diamond is worth ``value_micros`` millionths of a dollar, which need not
be a whole number of cents. The rule never rounds against the creator in aggregate:

- *A figure* (a statement's total, or any one row shown alone) is the exact value floored
  to the cent: the fraction is less than a cent, and it is still there, in diamonds.
- *Rows that add up to a total* (per day, per stream) are apportioned by largest remainder:
  every row is its exact value floored or raised by one cent, and the rows sum to the total
  exactly, so no total shows a cent its rows do not (nor the other way round).
- *A payout* takes only diamonds that are worth a whole number of cents exactly (``quote``):
  what it reserves is what its cents are worth, and the diamonds left over (worth less than
  one step of cents) stay in the creator's balance for the next payout. Nothing is lost to
  rounding, however many payouts are made.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Final

MICROS_PER_CENT: Final = 10_000


def floor_cents(diamonds: int, value_micros: int) -> int:
    """What ``diamonds`` are worth, floored to the cent."""
    return diamonds * value_micros // MICROS_PER_CENT


def apportion_cents(diamonds: Sequence[int], value_micros: int) -> list[int]:
    """Each row's cents: floored or one more, summing exactly to the floored total value.

    The cents the floors leave (fewer than rows) go one each to the rows with the largest
    remainders; equal remainders go to the earlier row, so the answer is deterministic.
    """
    assert value_micros > 0
    assert all(d >= 0 for d in diamonds)
    micros = [d * value_micros for d in diamonds]
    cents = [m // MICROS_PER_CENT for m in micros]
    left = sum(micros) // MICROS_PER_CENT - sum(cents)
    assert 0 <= left <= len(cents)
    by_remainder = sorted(range(len(micros)), key=lambda i: (-(micros[i] % MICROS_PER_CENT), i))
    for i in by_remainder[:left]:
        cents[i] += 1
    return cents


def payout_step(value_micros: int) -> tuple[int, int]:
    """(diamonds, cents): the fewest diamonds worth a whole number of cents, and those cents.

    5,000 millionths (half a cent) a diamond: 2 diamonds are 1 cent. Every payout is a whole
    number of these steps, so its diamonds are worth exactly its cents.
    """
    assert value_micros > 0
    g = math.gcd(value_micros, MICROS_PER_CENT)
    return MICROS_PER_CENT // g, value_micros // g


def quote(diamonds: int, value_micros: int) -> tuple[int, int]:
    """(diamonds reserved, cents paid) for a request of ``diamonds``: the most steps it holds.
    The rest of the request (less than one step) is not taken."""
    step_diamonds, step_cents = payout_step(value_micros)
    steps = max(0, diamonds) // step_diamonds
    return steps * step_diamonds, steps * step_cents


def min_payout_diamonds(min_cents: int, value_micros: int) -> int:
    """The fewest diamonds a payout of at least ``min_cents`` must reserve."""
    step_diamonds, step_cents = payout_step(value_micros)
    return -(-min_cents // step_cents) * step_diamonds
