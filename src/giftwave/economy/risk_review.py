"""The admin risk queue: flags with their evidence and what it links to, and a person's
decision on each (economy/risk_flags.py draws the states).

    clear    the flag closes: payouts and top-ups are as if it had never been (a frozen
             account is unfrozen, unless the user is blocked)
    hold     the flag stays open, marked as looked at: payouts keep waiting for a person
    freeze   the user's ledger accounts are frozen: no gifts, top-ups or payouts
             (``account_frozen``), until a later clear

Each decision is one conditional UPDATE (a flag cleared meanwhile answers
``risk_flag_closed``) and one audit line, ``audit.risk_decided``, like a payout's decision.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Engine, and_, or_, select

from giftwave.db.tables import gift_sends, payment_orders, payouts, users
from giftwave.economy import risk_flags
from giftwave.economy.payouts import PayoutStatus
from giftwave.economy.risk_flags import FlagState, RiskFlag
from giftwave.economy.wallets import Wallets
from giftwave.errors import Code, Conflict, NotFound
from giftwave.identity.users import UserStatus
from giftwave.logs import audit

LINKED_MAX: Final = 50  # per kind: the evidence lists are bounded the same way


class Decision(enum.StrEnum):
    CLEAR = "clear"
    HOLD = "hold"
    FREEZE = "freeze"

    @property
    def state(self) -> FlagState:
        return {
            Decision.CLEAR: FlagState.CLEARED,
            Decision.HOLD: FlagState.HELD,
            Decision.FREEZE: FlagState.FROZEN,
        }[self]


@dataclass(frozen=True, slots=True)
class LinkedUser:
    id: int
    handle: str
    created_at_us: int


@dataclass(frozen=True, slots=True)
class LinkedGift:
    id: int
    sender_id: int
    creator_id: int
    stream_id: str
    gift_id: str
    coins: int
    created_at_us: int


@dataclass(frozen=True, slots=True)
class LinkedTopUp:
    id: str
    user_id: int
    coins: int
    amount_minor: int
    currency: str
    status: str
    created_at_us: int


@dataclass(frozen=True, slots=True)
class LinkedPayout:
    id: str
    creator_id: int
    diamonds: int
    amount_minor: int
    status: str
    requested_at_us: int


@dataclass(frozen=True, slots=True)
class FlagView:
    """A flag as the queue shows it: the flag, its user, and the rows its evidence names."""

    flag: RiskFlag
    user: LinkedUser | None
    users: list[LinkedUser]
    gifts: list[LinkedGift]
    top_ups: list[LinkedTopUp]
    payouts: list[LinkedPayout]


class RiskReview:
    def __init__(self, db: Engine, wallets: Wallets) -> None:
        self._db = db
        self._wallets = wallets

    def queue(self, states: Sequence[FlagState], user_id: int | None, limit: int) -> list[FlagView]:
        with self._db.connect() as conn:
            flags = risk_flags.list_flags(conn, states, user_id, limit)
            return [_view(conn, flag) for flag in flags]

    def one(self, flag_id: int) -> FlagView:
        with self._db.connect() as conn:
            flag = risk_flags.find_flag(conn, flag_id)
            if flag is None:
                raise NotFound(Code.RISK_FLAG_NOT_FOUND, f"no risk flag {flag_id}")
            return _view(conn, flag)

    def decide(
        self, flag_id: int, decision: Decision, by_user_id: int | None, note: str | None
    ) -> FlagView:
        """A person's decision; audited once."""
        with self._db.begin() as conn:
            flag = risk_flags.find_flag(conn, flag_id)
            if flag is None:
                raise NotFound(Code.RISK_FLAG_NOT_FOUND, f"no risk flag {flag_id}")
            if not risk_flags.decide(conn, flag_id, decision.state, by_user_id, note):
                raise Conflict(
                    Code.RISK_FLAG_CLOSED,
                    "this flag was cleared already: a new pattern raises a new flag",
                )
            blocked = (
                conn.execute(select(users.c.status).where(users.c.id == flag.user_id)).scalar()
                == UserStatus.BLOCKED.value
            )
            still_frozen = risk_flags.is_frozen(conn, flag.user_id)
        # The ledger's own flag, after the decision is durable: freezing twice is harmless.
        if decision is Decision.FREEZE or (flag.state is FlagState.FROZEN and not still_frozen):
            self._wallets.set_frozen(flag.user_id, still_frozen or blocked)
        audit(
            "audit.risk_decided",
            flag_id=flag_id,
            user_id=flag.user_id,
            rule=flag.rule or flag.kind,
            decision=decision.value,
            by_user_id=by_user_id,
        )
        return self.one(flag_id)


def _view(conn: Any, flag: RiskFlag) -> FlagView:
    ev = flag.evidence
    user_ids = sorted({flag.user_id, *(int(u) for u in ev.get("users", []))})[:LINKED_MAX]
    u = users.c
    found = {
        int(r.id): LinkedUser(int(r.id), r.handle, int(r.created_at_us))
        for r in conn.execute(select(u.id, u.handle, u.created_at_us).where(u.id.in_(user_ids)))
    }
    g = gift_sends.c
    gifts = [
        LinkedGift(
            int(r.id),
            int(r.sender_id),
            int(r.creator_id),
            r.stream_id,
            r.gift_id,
            int(r.coins),
            int(r.created_at_us),
        )
        for r in conn.execute(
            select(
                g.id, g.sender_id, g.creator_id, g.stream_id, g.gift_id, g.coins, g.created_at_us
            )
            .where(g.id.in_([int(i) for i in ev.get("gifts", [])][:LINKED_MAX]))
            .order_by(g.id)
        )
    ]
    o = payment_orders.c
    top_ups = [
        LinkedTopUp(
            r.id,
            int(r.user_id),
            int(r.coins),
            int(r.amount_minor),
            r.currency,
            r.status,
            int(r.created_at_us),
        )
        for r in conn.execute(
            select(o.id, o.user_id, o.coins, o.amount_minor, o.currency, o.status, o.created_at_us)
            .where(o.id.in_([str(i) for i in ev.get("top_ups", [])][:LINKED_MAX]))
            .order_by(o.created_at_us)
        )
    ]
    p = payouts.c
    # The payouts the evidence names, and any of the user's still waiting for a person.
    payout_rows = conn.execute(
        select(p.id, p.creator_id, p.diamonds, p.amount_minor, p.status, p.requested_at_us)
        .where(
            or_(
                p.id.in_([str(i) for i in ev.get("payouts", [])][:LINKED_MAX]),
                and_(p.creator_id == flag.user_id, p.status == PayoutStatus.PENDING.value),
            )
        )
        .order_by(p.requested_at_us)
        .limit(LINKED_MAX)
    )
    linked_payouts = [
        LinkedPayout(
            r.id,
            int(r.creator_id),
            int(r.diamonds),
            int(r.amount_minor),
            r.status,
            int(r.requested_at_us),
        )
        for r in payout_rows
    ]
    return FlagView(
        flag=flag,
        user=found.get(flag.user_id),
        users=[found[i] for i in user_ids if i in found and i != flag.user_id],
        gifts=gifts,
        top_ups=top_ups,
        payouts=linked_payouts,
    )
