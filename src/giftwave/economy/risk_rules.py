"""Fraud and abuse rules: each a pure function of plain facts, answering the flags to raise.

The stores read the facts (economy/risk_follower.py) and write the flags
(economy/risk_flags.py); every threshold and window is the operator's (config.py, bounded;
docs/risk.md explains each rule and how it was measured). A flag names one user (the viewer
or the creator a person must look at), carries its evidence (the ids of the gifts, top-ups,
payouts and users it saw, the counts and the window) and a natural key: the same pattern
evaluated again, on any node, is the same key, so it is one flag.

    card_testing        many small failed top-ups by one user, one card or one address
    funnel              fresh accounts whose every gift went to one creator
    fast_cycle          a payout requested soon after the gifts it pays out
    chargebacks         a creator whose gifters' chargeback rate passes a threshold
    refund_after_gift   a top-up refunded (or disputed) after its coins were gifted
    shared_card         one payment card across many accounts
"""

from __future__ import annotations

import enum
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

US_PER_S: Final = 1_000_000
EVIDENCE_MAX_IDS: Final = 50  # per list: a flag shows enough to act, never a table


class Rule(enum.StrEnum):
    CARD_TESTING = "card_testing"
    FUNNEL = "funnel"
    FAST_CYCLE = "fast_cycle"
    CHARGEBACKS = "chargebacks"
    REFUND_AFTER_GIFT = "refund_after_gift"
    SHARED_CARD = "shared_card"


class Severity(enum.StrEnum):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True, slots=True)
class RiskRules:
    """The operator's thresholds (config.py: ``GIFTWAVE_RISK_*``)."""

    card_testing_failures: int = 5  # failed top-ups in the window…
    card_testing_window_s: int = 3_600
    card_testing_small_minor: int = 1_000  # …each at most this much (minor units)
    funnel_accounts: int = 5  # fresh accounts…
    funnel_fresh_s: int = 3_600  # …whose first gift came this soon after they registered
    funnel_share_pct: int = 50  # …giving at least this share of the creator's coins
    funnel_window_s: int = 7 * 86_400
    fast_cycle_s: int = 3_600  # payout request after the first gift it pays out
    chargeback_min: int = 3
    chargeback_rate_pct: int = 20
    chargeback_window_s: int = 30 * 86_400
    refund_after_gift_s: int = 86_400  # gifts this soon after the refunded top-up's credit…
    refund_after_gift_pct: int = 50  # …at least this share of its coins
    refund_after_gift_disputes: bool = True  # a disputed top-up counts as a refunded one
    refund_after_gift_flags: bool = False  # False: evidence only (an audit line), no flag
    shared_card_accounts: int = 3
    shared_card_window_s: int = 30 * 86_400

    def __post_init__(self) -> None:
        assert self.card_testing_failures >= 2
        assert self.funnel_accounts >= 2
        assert 1 <= self.funnel_share_pct <= 100
        assert 1 <= self.chargeback_rate_pct <= 100
        assert 1 <= self.refund_after_gift_pct <= 100
        assert self.chargeback_min >= 1
        assert self.shared_card_accounts >= 2
        for window in (
            self.card_testing_window_s,
            self.funnel_fresh_s,
            self.funnel_window_s,
            self.fast_cycle_s,
            self.chargeback_window_s,
            self.refund_after_gift_s,
            self.shared_card_window_s,
        ):
            assert window > 0


@dataclass(frozen=True, slots=True)
class FlagDraft:
    """A flag a rule asks for; the store writes it once per ``natural_key``."""

    user_id: int
    rule: Rule
    natural_key: str
    severity: Severity
    evidence: dict[str, Any] = field(hash=False)


def _ids(values: Iterable[Any]) -> list[Any]:
    return sorted(set(values))[:EVIDENCE_MAX_IDS]


def _window(start_us: int, end_us: int) -> dict[str, int]:
    return {"from_us": start_us, "to_us": end_us}


# --- card testing -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FailedTopUp:
    order_id: str
    user_id: int
    card_fingerprint: str | None
    address_hash: str | None
    amount_minor: int
    at_us: int


def card_testing(rules: RiskRules, failures: Sequence[FailedTopUp]) -> list[FlagDraft]:
    """A burst: at least N small failed top-ups within the window, counted per user, per card
    fingerprint and per hashed address (a tester rotates one of them, rarely all three). Every
    user of a burst is flagged once, whichever ways they were caught; the key is their first
    failure, so a later evaluation that sees the same burst asks for the same flag."""
    small = sorted(
        (f for f in failures if f.amount_minor <= rules.card_testing_small_minor),
        key=lambda f: (f.at_us, f.order_id),
    )
    groups: dict[tuple[str, str], list[FailedTopUp]] = {}
    for f in small:
        groups.setdefault(("user", str(f.user_id)), []).append(f)
        if f.card_fingerprint:
            groups.setdefault(("card", f.card_fingerprint), []).append(f)
        if f.address_hash:
            groups.setdefault(("address", f.address_hash), []).append(f)
    window_us = rules.card_testing_window_s * US_PER_S
    # Per user, every burst they are in (by their own account, a card, an address): one flag.
    seen: dict[int, tuple[set[str], dict[str, FailedTopUp]]] = {}
    for (by, _value), items in sorted(groups.items()):
        burst = _first_burst(items, rules.card_testing_failures, window_us)
        for f in burst or ():
            for user in {g.user_id for g in burst or ()}:
                ways, failed = seen.setdefault(user, (set(), {}))
                ways.add(by)
                failed[f.order_id] = f
    drafts = []
    for user, (ways, failed) in sorted(seen.items()):
        burst = sorted(failed.values(), key=lambda f: (f.at_us, f.order_id))
        first = burst[0]
        drafts.append(
            FlagDraft(
                user,
                Rule.CARD_TESTING,
                f"{Rule.CARD_TESTING}:{user}:{first.order_id}"[:160],
                Severity.HIGH,
                {
                    "by": sorted(ways),
                    "failures": len(burst),
                    "top_ups": _ids(f.order_id for f in burst),
                    "users": _ids(f.user_id for f in burst),
                    "cards": _ids(f.card_fingerprint for f in burst if f.card_fingerprint),
                    "window": _window(first.at_us, burst[-1].at_us),
                },
            )
        )
    return drafts


def _first_burst(
    items: Sequence[FailedTopUp], count: int, window_us: int
) -> list[FailedTopUp] | None:
    """The first run of ``count`` or more failures within ``window_us`` (items in time order),
    grown to every failure within the window of its first."""
    for i in range(len(items) - count + 1):
        if items[i + count - 1].at_us - items[i].at_us <= window_us:
            end = items[i].at_us + window_us
            return [f for f in items[i:] if f.at_us <= end]
    return None


# --- funnel -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FunnelGifter:
    """One gifter of the creator within the window."""

    user_id: int
    registered_at_us: int
    first_gift_at_us: int  # their first gift ever, to anyone
    coins_to_creator: int
    gifts_elsewhere: int  # their gifts ever to any other creator
    gift_ids: tuple[int, ...]


def funnel(
    rules: RiskRules,
    creator_id: int,
    gifters: Sequence[FunnelGifter],
    creator_coins: int,
    payouts: Sequence[str],
) -> FlagDraft | None:
    """The laundering pattern: at least N fresh accounts (their first gift came within
    ``funnel_fresh_s`` of registering) whose every gift went to this creator, bringing at
    least ``funnel_share_pct`` of the creator's coins in the window. Honest first-time fans
    exist, so one or two are normal; a ring needs many. Severity is high once the creator
    has asked for a payout (the cash-out step of the pattern)."""
    fresh = [
        g
        for g in gifters
        if g.gifts_elsewhere == 0
        and g.first_gift_at_us - g.registered_at_us <= rules.funnel_fresh_s * US_PER_S
    ]
    if len(fresh) < rules.funnel_accounts or creator_coins <= 0:
        return None
    fresh_coins = sum(g.coins_to_creator for g in fresh)
    if fresh_coins * 100 < rules.funnel_share_pct * creator_coins:
        return None
    start = min(g.first_gift_at_us for g in fresh)
    key = f"{Rule.FUNNEL}:{creator_id}:{start // (rules.funnel_window_s * US_PER_S)}"
    return FlagDraft(
        creator_id,
        Rule.FUNNEL,
        key,
        Severity.HIGH if payouts else Severity.MEDIUM,
        {
            "accounts": len(fresh),
            "users": _ids(g.user_id for g in fresh),
            "gifts": _ids(i for g in fresh for i in g.gift_ids),
            "coins": fresh_coins,
            "creator_coins": creator_coins,
            "payouts": _ids(payouts),
            "window": _window(start, max(g.first_gift_at_us for g in fresh)),
        },
    )


# --- fast cycle -------------------------------------------------------------------------------


def fast_cycle(
    rules: RiskRules,
    creator_id: int,
    payout_id: str,
    requested_at_us: int,
    earned_since_us: int | None,
    gift_ids: Sequence[int],
) -> FlagDraft | None:
    """A payout requested less than ``fast_cycle_s`` after the first gift it pays out (the
    first gift after the creator's previous request): coins in, gifted and cashed out within
    the hour is what a launderer does; a streamer's earnings sit for a stream or longer."""
    if earned_since_us is None:
        return None
    cycle_us = requested_at_us - earned_since_us
    if cycle_us >= rules.fast_cycle_s * US_PER_S:
        return None
    return FlagDraft(
        creator_id,
        Rule.FAST_CYCLE,
        f"{Rule.FAST_CYCLE}:{payout_id}",
        Severity.MEDIUM,
        {
            "payouts": [payout_id],
            "cycle_s": cycle_us // US_PER_S,
            "gifts": _ids(gift_ids),
            "window": _window(earned_since_us, requested_at_us),
        },
    )


# --- chargebacks ------------------------------------------------------------------------------


def chargebacks(
    rules: RiskRules,
    creator_id: int,
    gifters: Sequence[int],
    charged_back: Sequence[int],
    top_ups: Sequence[str],
    window: tuple[int, int],
) -> FlagDraft | None:
    """The creator's gifters in the window, and those of them with a chargeback: at least
    ``chargeback_min`` of them, and at least ``chargeback_rate_pct`` percent."""
    everyone = set(gifters)
    bad = set(charged_back) & everyone
    if len(bad) < rules.chargeback_min or len(bad) * 100 < rules.chargeback_rate_pct * len(
        everyone
    ):
        return None
    bucket = window[1] // (rules.chargeback_window_s * US_PER_S)
    return FlagDraft(
        creator_id,
        Rule.CHARGEBACKS,
        f"{Rule.CHARGEBACKS}:{creator_id}:{bucket}",
        Severity.HIGH,
        {
            "gifters": len(everyone),
            "charged_back": len(bad),
            "rate_pct": len(bad) * 100 // len(everyone),
            "users": _ids(bad),
            "top_ups": _ids(top_ups),
            "window": _window(*window),
        },
    )


# --- refunds after gifting --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ClawedTopUp:
    """A top-up taken back (a refund, or a dispute: a chargeback), as its clawback left it,
    and the buyer's gifts in the window after its coins were credited."""

    user_id: int
    clawback_id: str  # one clawback of the top-up (its legs share it): one flag each
    order_id: str | None
    disputed: bool
    coins: int  # the coins clawed back
    unpaid: int  # of them, what the buyer's balance no longer held: a debt now
    credited_at_us: int
    clawed_at_us: int
    gifted_coins: int  # the buyer's gifts after the credit, within the window and the clawback
    gift_ids: tuple[int, ...]
    last_gift_at_us: int | None


def refund_after_gift(rules: RiskRules, top_up: ClawedTopUp) -> FlagDraft | None:
    """The refunded top-up's own coins went to creators: the buyer's balance at the clawback
    no longer held them (part of it became a debt), and the buyer gifted at least
    ``refund_after_gift_pct`` percent of them within ``refund_after_gift_s`` of the credit.
    The money goes back to the buyer, the creator keeps the gifts: the platform pays.

    Tied to the top-up, not to the buyer's other gifts: a regular gifter refunding a top-up
    they had not spent keeps its coins on the balance (no debt), and gifts paid with older
    coins before this top-up was credited do not count. A dispute of such a top-up is the
    same pattern told to the bank instead (``refund_after_gift_disputes``)."""
    if top_up.disputed and not rules.refund_after_gift_disputes:
        return None
    if top_up.unpaid <= 0 or top_up.coins <= 0 or not top_up.gift_ids:
        return None
    if top_up.gifted_coins * 100 < rules.refund_after_gift_pct * top_up.coins:
        return None
    return FlagDraft(
        top_up.user_id,
        Rule.REFUND_AFTER_GIFT,
        f"{Rule.REFUND_AFTER_GIFT}:{top_up.clawback_id}"[:160],
        Severity.LOW,
        {
            "cause": "chargeback" if top_up.disputed else "refund",
            "refund": top_up.clawback_id,
            "top_ups": [] if top_up.order_id is None else [top_up.order_id],
            "coins": top_up.coins,
            "unpaid_coins": top_up.unpaid,
            "gifted_coins": top_up.gifted_coins,
            "gifts": _ids(top_up.gift_ids),
            "clawed_at_us": top_up.clawed_at_us,
            "window": _window(
                top_up.credited_at_us,
                top_up.credited_at_us if top_up.last_gift_at_us is None else top_up.last_gift_at_us,
            ),
        },
    )


# --- one card, many accounts ------------------------------------------------------------------


def shared_card(
    rules: RiskRules, fingerprint: str, uses: Sequence[tuple[int, str, int]]
) -> list[FlagDraft]:
    """``uses``: (user, order, at) of top-ups with this card in the window. At least
    ``shared_card_accounts`` different accounts: each is flagged (a family shares a card now
    and then: the threshold says how many are too many)."""
    users = {u for u, _, _ in uses}
    if len(users) < rules.shared_card_accounts:
        return []
    evidence = {
        "card": fingerprint,
        "accounts": len(users),
        "users": _ids(users),
        "top_ups": _ids(o for _, o, _ in uses),
        "window": _window(min(a for _, _, a in uses), max(a for _, _, a in uses)),
    }
    return [
        FlagDraft(
            user,
            Rule.SHARED_CARD,
            f"{Rule.SHARED_CARD}:{fingerprint}:{user}"[:160],
            Severity.MEDIUM,
            evidence,
        )
        for user in sorted(users)
    ]
