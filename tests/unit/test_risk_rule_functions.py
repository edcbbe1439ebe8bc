"""Each risk rule as a pure function of plain facts: where its threshold lies, what evidence it
writes, and that the same facts give the same natural key (one flag, however often asked)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from giftwave.config import Settings
from giftwave.economy.risk_rules import (
    US_PER_S,
    ClawedTopUp,
    FailedTopUp,
    FunnelGifter,
    RiskRules,
    Rule,
    Severity,
    card_testing,
    chargebacks,
    fast_cycle,
    funnel,
    refund_after_gift,
    shared_card,
)

RULES = RiskRules()
T0 = 1_000_000 * US_PER_S


def failed(i: int, user: int = 1, card: str | None = None, address: str | None = None, *,
           at_s: int = 0, minor: int = 99) -> FailedTopUp:  # fmt: skip
    return FailedTopUp(f"ord_{i:03d}", user, card, address, minor, T0 + at_s * US_PER_S)


def test_card_testing_needs_n_small_failures_in_the_window() -> None:
    four = [failed(i, at_s=i * 60) for i in range(4)]
    assert card_testing(RULES, four) == []
    five = [*four, failed(4, at_s=240)]
    (flag,) = card_testing(RULES, five)
    assert (flag.user_id, flag.rule, flag.severity) == (1, Rule.CARD_TESTING, Severity.HIGH)
    assert flag.evidence["failures"] == 5
    assert flag.evidence["top_ups"] == [f"ord_{i:03d}" for i in range(5)]
    assert card_testing(RULES, list(reversed(five)))[0].natural_key == flag.natural_key
    # Spread wider than the window, or large amounts: not a burst.
    spread = [failed(i, at_s=i * 1_000) for i in range(5)]
    assert card_testing(RULES, spread) == []
    large = [failed(i, at_s=i, minor=5_000) for i in range(5)]
    assert card_testing(RULES, large) == []


def test_card_testing_across_accounts_by_card_or_address_flags_each_once() -> None:
    by_card = [failed(i, user=10 + i, card="fp_x", at_s=i) for i in range(5)]
    flags = card_testing(RULES, by_card)
    assert sorted(f.user_id for f in flags) == [10, 11, 12, 13, 14]
    assert all(f.evidence["by"] == ["card"] for f in flags)
    by_both = [failed(i, user=10 + i, card="fp_x", address="a1", at_s=i) for i in range(5)]
    assert len(card_testing(RULES, by_both)) == 5


def gifter(user: int, *, fresh: bool = True, elsewhere: int = 0, coins: int = 700) -> FunnelGifter:
    registered = T0 - (60 if fresh else 86_400) * US_PER_S
    return FunnelGifter(user, registered, T0, coins, elsewhere, ())


def test_funnel_counts_fresh_exclusive_accounts_with_a_share_of_the_coins() -> None:
    ring = [gifter(u) for u in range(5)]
    flag = funnel(RULES, 99, ring, 3_500, [])
    assert flag is not None
    assert (flag.user_id, flag.severity, flag.evidence["accounts"]) == (99, Severity.MEDIUM, 5)
    assert funnel(RULES, 99, ring, 3_500, ["po_1"]).severity is Severity.HIGH  # type: ignore[union-attr]
    assert funnel(RULES, 99, ring[:4], 2_800, []) is None  # too few
    # Not fresh, or also gifting elsewhere: honest fans.
    assert funnel(RULES, 99, [gifter(u, fresh=False) for u in range(5)], 3_500, []) is None
    assert funnel(RULES, 99, [gifter(u, elsewhere=1) for u in range(5)], 3_500, []) is None
    # Five fresh fans who bring a small part of a big creator's coins: not a funnel.
    assert funnel(RULES, 99, ring, 100_000, []) is None


def test_fast_cycle_is_measured_from_the_first_gift_it_pays_out() -> None:
    minute = 60 * US_PER_S
    flag = fast_cycle(RULES, 7, "po_1", T0 + 10 * minute, T0, [1, 2])
    assert flag is not None
    assert flag.evidence["cycle_s"] == 600
    assert flag.natural_key == "fast_cycle:po_1"
    assert fast_cycle(RULES, 7, "po_1", T0 + 61 * minute, T0, [1]) is None
    assert fast_cycle(RULES, 7, "po_1", T0, None, []) is None


def test_chargebacks_need_a_count_and_a_rate() -> None:
    window = (T0 - 86_400 * US_PER_S, T0)
    gifters = list(range(10))
    assert chargebacks(RULES, 7, gifters, [0, 1], ["o"], window) is None  # 2 < 3
    flag = chargebacks(RULES, 7, gifters, [0, 1, 2], ["o"], window)
    assert flag is not None
    assert flag.evidence["rate_pct"] == 30
    assert chargebacks(RULES, 7, list(range(20)), [0, 1, 2], ["o"], window) is None  # 15%
    assert chargebacks(RULES, 7, gifters, [100, 101, 102], ["o"], window) is None  # not gifters


HOUR = 3_600 * US_PER_S


def clawed(*, gifted: int, unpaid: int, disputed: bool = False, coins: int = 1_000) -> ClawedTopUp:
    """A 1,000-coin top-up credited at T0, clawed back two hours later."""
    return ClawedTopUp(
        user_id=5,
        clawback_id="topup:sandbox:p1:refund:1000",
        order_id="ord_1",
        disputed=disputed,
        coins=coins,
        unpaid=unpaid,
        credited_at_us=T0,
        clawed_at_us=T0 + 2 * HOUR,
        gifted_coins=gifted,
        gift_ids=(3, 4) if gifted else (),
        last_gift_at_us=T0 + HOUR if gifted else None,
    )


def test_a_refund_of_a_top_up_whose_coins_were_gifted_is_named_with_its_evidence() -> None:
    flag = refund_after_gift(RULES, clawed(gifted=1_000, unpaid=1_000))
    assert flag is not None
    assert (flag.user_id, flag.rule, flag.severity) == (5, Rule.REFUND_AFTER_GIFT, Severity.LOW)
    assert flag.natural_key == "refund_after_gift:topup:sandbox:p1:refund:1000"
    assert flag.evidence == {
        "cause": "refund",
        "refund": "topup:sandbox:p1:refund:1000",
        "top_ups": ["ord_1"],
        "coins": 1_000,
        "unpaid_coins": 1_000,
        "gifted_coins": 1_000,
        "gifts": [3, 4],
        "clawed_at_us": T0 + 2 * HOUR,
        "window": {"from_us": T0, "to_us": T0 + HOUR},
    }
    # Half the top-up gifted is enough; less is not (the rest of it was still there).
    assert refund_after_gift(RULES, clawed(gifted=500, unpaid=500)) is not None
    assert refund_after_gift(RULES, clawed(gifted=499, unpaid=499)) is None


def test_an_honest_refund_of_an_unspent_top_up_is_not_named() -> None:
    """A regular gifter refunds a top-up late: they gifted a lot after it (older coins), but
    the balance still held the refunded coins (no debt): nothing gifted was clawed back."""
    assert refund_after_gift(RULES, clawed(gifted=5_000, unpaid=0)) is None
    assert refund_after_gift(RULES, clawed(gifted=0, unpaid=0)) is None
    # A debt without gifts of this top-up (its coins went before it, or elsewhere): not this.
    assert refund_after_gift(RULES, clawed(gifted=0, unpaid=1_000)) is None


def test_a_dispute_of_a_gifted_top_up_is_named_unless_the_operator_leaves_disputes_out() -> None:
    flag = refund_after_gift(RULES, clawed(gifted=1_000, unpaid=800, disputed=True))
    assert flag is not None
    assert flag.evidence["cause"] == "chargeback"
    no_disputes = RiskRules(refund_after_gift_disputes=False)
    assert refund_after_gift(no_disputes, clawed(gifted=1_000, unpaid=800, disputed=True)) is None
    assert refund_after_gift(no_disputes, clawed(gifted=1_000, unpaid=800)) is not None
    stricter = RiskRules(refund_after_gift_pct=90)
    assert refund_after_gift(stricter, clawed(gifted=800, unpaid=800)) is None


def test_one_card_on_many_accounts() -> None:
    uses = [(1, "o1", T0), (2, "o2", T0), (2, "o3", T0)]
    assert shared_card(RULES, "fp", uses) == []
    flags = shared_card(RULES, "fp", [*uses, (3, "o4", T0)])
    assert [f.user_id for f in flags] == [1, 2, 3]
    assert len({f.natural_key for f in flags}) == 3


@pytest.mark.parametrize(
    "bad", [{"card_testing_failures": 1}, {"funnel_share_pct": 0}, {"refund_after_gift_pct": 0}]
)
def test_absurd_thresholds_are_refused(bad: dict[str, int]) -> None:
    with pytest.raises(AssertionError):
        RiskRules(**bad)


@pytest.mark.parametrize(
    "bad",
    [
        {"risk_card_testing_failures": 1},
        {"risk_funnel_share_pct": 101},
        {"risk_fast_cycle_s": 0},
        {"risk_flagged_topup_coins_per_day": -1},
        {"risk_topup_block_s": 10**9},
    ],
)
def test_risk_settings_are_bounded(bad: dict[str, int]) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)
