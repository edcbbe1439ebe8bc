"""The approval rule without a database: a diamond debt is settled before anything is paid,
from the diamonds not reserved first, then from the reservation; only whole cents are paid."""

from __future__ import annotations

import pytest

from giftwave.economy.payouts import Approval, PayoutPolicy, plan_approval
from giftwave.identity.users import AgeRule

# Half a cent a diamond: two diamonds make a cent.
POLICY = PayoutPolicy(
    min_cents=100,
    daily_cap_cents=100_000,
    review_timeout_s=3600,
    diamond_value_usd_micros=5_000,
    age_rule=AgeRule(18, {}),
)


@pytest.mark.parametrize(
    ("reserved", "debt", "unreserved", "expected"),
    [
        (1_000, 0, 0, Approval(0, 1_000)),  # no debt: all of it
        (1_000, 0, 500, Approval(0, 1_000)),
        (1_300, 300, 100, Approval(300, 1_100)),  # 100 unreserved, 200 reserved
        (1_000, 300, 500, Approval(300, 1_000)),  # the unreserved cover it
        (400, 400, 0, Approval(400, 0)),  # nothing left: voided
        (400, 900, 0, Approval(400, 0)),  # more owed than reserved: still owed after
        (400, 900, 300, Approval(700, 0)),
        (1_000, 1, 0, Approval(1, 998)),  # 999 left: 998 are 499 cents, 1 stays
        (2, 1, 0, Approval(1, 0)),  # 1 left, worth half a cent: not paid
        (1_000, 10, -5, Approval(10, 990)),  # an overdrawn reading counts as none
    ],
)
def test_a_debt_is_settled_before_anything_is_paid(
    reserved: int, debt: int, unreserved: int, expected: Approval
) -> None:
    plan = plan_approval(POLICY, reserved, debt, unreserved)
    assert plan == expected
    assert plan.paid is (plan.paid_diamonds > 0)
    # Never more paid than reserved, never more settled than owed or than there is.
    assert plan.settle_diamonds <= min(debt, max(0, unreserved) + reserved)
    assert plan.paid_diamonds + max(0, plan.settle_diamonds - max(0, unreserved)) <= reserved
