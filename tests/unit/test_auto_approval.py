"""The payout auto-approval policy, a pure function: every combination of its conditions, and
each boundary, decides as docs/economy.md says ("Who approves a payout")."""

from __future__ import annotations

import itertools

import pytest

from giftwave.economy.payout_policy import (
    US_PER_DAY,
    AutoApproval,
    PayoutFacts,
    Reason,
    decide,
)

RULE = AutoApproval(below_cents=10_000, min_history_days=30, quiet_days=14)
NOW = 1_000 * US_PER_DAY


def facts(**changes: object) -> PayoutFacts:
    base: dict[str, object] = {
        "amount_cents": 5_000,
        "now_us": NOW,
        "first_earning_us": NOW - 60 * US_PER_DAY,
        "open_risk_flags": (),
        "debt_diamonds": 0,
        "returned_payouts_recent": 0,
        "reversed_gifts_recent": 0,
    }
    base.update(changes)
    return PayoutFacts(**base)  # type: ignore[arg-type]


# Each condition: the facts that break it, and the reason the decision must name.
BREAKS: dict[str, tuple[dict[str, object], Reason]] = {
    "amount": ({"amount_cents": 10_000}, Reason.AMOUNT_NOT_BELOW_LIMIT),
    "no_earnings": ({"first_earning_us": None}, Reason.NO_EARNINGS),
    "young": ({"first_earning_us": NOW - 29 * US_PER_DAY}, Reason.HISTORY_TOO_SHORT),
    "flag": ({"open_risk_flags": ("chargebacks",)}, Reason.OPEN_RISK_FLAG),
    "debt": ({"debt_diamonds": 1}, Reason.DIAMOND_DEBT),
    "returned": ({"returned_payouts_recent": 1}, Reason.RECENT_RETURNED_PAYOUT),
    "reversed": ({"reversed_gifts_recent": 2}, Reason.RECENT_REVERSED_GIFT),
}


def combinations() -> list[tuple[str, ...]]:
    names = list(BREAKS)
    found = []
    for n in range(len(names) + 1):
        for combo in itertools.combinations(names, n):
            # No earnings and a short history are two values of one fact.
            if not {"no_earnings", "young"} <= set(combo):
                found.append(combo)
    return found


@pytest.mark.parametrize("broken", combinations(), ids=lambda c: "+".join(c) or "clean")
def test_every_combination_of_conditions(broken: tuple[str, ...]) -> None:
    changes: dict[str, object] = {}
    for name in broken:
        changes.update(BREAKS[name][0])
    decision = decide(RULE, facts(**changes))
    if not broken:
        assert decision.approve
        assert decision.reasons == (Reason.WITHIN_POLICY,)
        assert decision.outcome == "approve"
    else:
        assert not decision.approve
        assert decision.outcome == "review"
        # Every failed condition is named, in the policy's order, and nothing else.
        assert set(decision.reasons) == {BREAKS[name][1] for name in broken}
        assert len(decision.reasons) == len(broken)


def test_an_off_policy_sends_everything_to_review() -> None:
    off = AutoApproval(below_cents=0, min_history_days=0, quiet_days=0)
    decision = decide(off, facts(amount_cents=1))
    assert (decision.approve, decision.reasons) == (False, (Reason.POLICY_OFF,))


def test_boundaries() -> None:
    # Below the limit, not at it.
    assert decide(RULE, facts(amount_cents=9_999)).approve
    assert not decide(RULE, facts(amount_cents=10_000)).approve
    # Exactly N days of history is enough; a microsecond less is not.
    assert decide(RULE, facts(first_earning_us=NOW - 30 * US_PER_DAY)).approve
    assert not decide(RULE, facts(first_earning_us=NOW - 30 * US_PER_DAY + 1)).approve
    # No history needed: a first earning this very moment is enough, none at all is not.
    fresh = AutoApproval(below_cents=10_000, min_history_days=0, quiet_days=14)
    assert decide(fresh, facts(first_earning_us=NOW)).approve
    assert decide(fresh, facts(first_earning_us=None)).reasons == (Reason.NO_EARNINGS,)


def test_the_quiet_window() -> None:
    assert RULE.quiet_since_us(NOW) == NOW - 14 * US_PER_DAY
    assert AutoApproval(1, 0, 0).quiet_since_us(NOW) == NOW
