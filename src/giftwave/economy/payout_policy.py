"""Who approves a payout: the operator's policy, one pure function of plain values.

A payout is approved without a person only when every condition holds; otherwise it waits in
the review queue, and the decision names every condition that did not hold (a reviewer sees
all of them at once, not the first):

    amount            below ``GIFTWAVE_PAYOUT_AUTO_APPROVE_BELOW_CENTS`` (0: the policy is off)
    history           the creator's first gift not reversed is at least N days old
    risk              no open risk flag (table ``risk_flags``, economy/risk_flags.py)
    debt              no diamond debt
    quiet             no payout returned and no gift reversed within the last quiet days

History is counted from the first earning, not from the account's creation: an account opened
long ago and left idle has no record as an earner, and opening accounts early to age them is
free. The facts are read in the request's own transaction (economy/payouts.py), so the
decision and the payout row are written together, once.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Final

US_PER_DAY: Final = 86_400 * 1_000_000


class Reason(enum.StrEnum):
    """Why a payout was decided as it was: stable words, stored and shown to reviewers."""

    WITHIN_POLICY = "within_policy"  # approved: every condition held
    POLICY_OFF = "policy_off"
    AMOUNT_NOT_BELOW_LIMIT = "amount_not_below_limit"
    NO_EARNINGS = "no_earnings"
    HISTORY_TOO_SHORT = "history_too_short"
    OPEN_RISK_FLAG = "open_risk_flag"
    DIAMOND_DEBT = "diamond_debt"
    RECENT_RETURNED_PAYOUT = "recent_returned_payout"
    RECENT_REVERSED_GIFT = "recent_reversed_gift"
    # A person's decisions.
    MANUAL_APPROVAL = "manual_approval"
    MANUAL_REJECTION = "manual_rejection"
    # giftwave's own: nobody decided before the reservation's timeout (the ledger's expiry).
    REVIEW_TIMEOUT = "review_timeout"


@dataclass(frozen=True, slots=True)
class AutoApproval:
    """The operator's settings (config.py)."""

    below_cents: int  # 0: off
    min_history_days: int
    quiet_days: int

    def __post_init__(self) -> None:
        assert self.below_cents >= 0
        assert self.min_history_days >= 0
        assert self.quiet_days >= 0

    @property
    def on(self) -> bool:
        return self.below_cents > 0

    def quiet_since_us(self, now_us: int) -> int:
        """Returns and reversals at or after this moment count as recent."""
        return now_us - self.quiet_days * US_PER_DAY


@dataclass(frozen=True, slots=True)
class PayoutFacts:
    """What the policy knows of one payout and its creator, read at the request."""

    amount_cents: int
    now_us: int
    first_earning_us: int | None  # the creator's first gift not reversed; None: none yet
    open_risk_flags: tuple[str, ...]  # their kinds
    debt_diamonds: int
    returned_payouts_recent: int
    reversed_gifts_recent: int


@dataclass(frozen=True, slots=True)
class Decision:
    approve: bool
    reasons: tuple[Reason, ...]

    @property
    def outcome(self) -> str:
        return "approve" if self.approve else "review"


def decide(rule: AutoApproval, facts: PayoutFacts) -> Decision:
    """Approve without a person, or send to review naming every condition that failed."""
    assert facts.amount_cents > 0
    assert facts.debt_diamonds >= 0
    assert facts.returned_payouts_recent >= 0
    assert facts.reversed_gifts_recent >= 0
    if not rule.on:
        return Decision(False, (Reason.POLICY_OFF,))
    failed: list[Reason] = []
    if facts.amount_cents >= rule.below_cents:
        failed.append(Reason.AMOUNT_NOT_BELOW_LIMIT)
    if facts.first_earning_us is None:
        failed.append(Reason.NO_EARNINGS)
    elif facts.now_us - facts.first_earning_us < rule.min_history_days * US_PER_DAY:
        failed.append(Reason.HISTORY_TOO_SHORT)
    if facts.open_risk_flags:
        failed.append(Reason.OPEN_RISK_FLAG)
    if facts.debt_diamonds > 0:
        failed.append(Reason.DIAMOND_DEBT)
    if facts.returned_payouts_recent > 0:
        failed.append(Reason.RECENT_RETURNED_PAYOUT)
    if facts.reversed_gifts_recent > 0:
        failed.append(Reason.RECENT_REVERSED_GIFT)
    if failed:
        return Decision(False, tuple(failed))
    return Decision(True, (Reason.WITHIN_POLICY,))
