"""The rules engine's feed: the ledger after commit, off the gift path, each event once.

    transfers (seq > position, ≤ chunk): gift coins ⋈ gift_sends, payout reservations,
        top-up credits, refunds and chargebacks of top-ups
        ─► per creator, payout, card and buyer touched: the facts of its rules (risk_rules.py)
        ─► new risk_flags rows and the new position, in ONE transaction

    payment_orders failed since the position (a time):  ─► card-testing flags, the same way

The positions are ``db/watermarks.py`` ones: the first write of a run locks its row, so with
any number of nodes one run acts on a chunk and the others find it passed; a crash before the
commit leaves the position where it was, and the chunk is evaluated again. A flag's natural
key (unique) makes a second evaluation of the same pattern a no-op all the same.

Failed top-ups move no money, so they are not in the ledger: the card-testing scan follows
``payment_orders.updated_at_us`` instead, looking ``LATE_COMMIT_S`` behind its position (an
order committed a moment after a later one is not missed; the keys absorb the overlap).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, func, or_, select

from giftwave import metrics
from giftwave.db import watermarks
from giftwave.db.id_lists import in_parts
from giftwave.db.tables import (
    gift_sends,
    payment_events,
    payment_orders,
    payouts,
    risk_flags,
    transfers,
    users,
)
from giftwave.economy.risk_flags import escalate, raise_flags
from giftwave.economy.risk_rules import (
    US_PER_S,
    ClawedTopUp,
    FailedTopUp,
    FlagDraft,
    FunnelGifter,
    RiskRules,
    Rule,
    card_testing,
    chargebacks,
    fast_cycle,
    funnel,
    refund_after_gift,
    shared_card,
)
from giftwave.ledger.annex import PAYOUT_PENDING_PREFIX
from giftwave.logs import audit
from giftwave.periodic import PeriodicThread, Schedule

WATERMARK: Final = "risk_rules"
FAILURES_WATERMARK: Final = "risk_card_testing"
CHUNK_MAX_TRANSFERS: Final = 10_000
FAILURES_MAX: Final = 5_000  # failed orders read per scan
LATE_COMMIT_S: Final = 10
TOPUP_PREFIX: Final = "topup:"
FAILED: Final = "failed"
EVIDENCE_GIFTS: Final = 20
CHUNKS_PER_RUN: Final = 50  # a round is bounded; the next one goes on

# Told each draft an evidence-only rule found (besides its audit line): how the simulator
# measures such a rule on its truth without the flags changing what the viewers may do.
EvidenceSink = Callable[[FlagDraft], None]


class RiskFollower(watermarks.LedgerFollower):
    """Evaluates the ledger-fed rules for what each chunk touched, and writes the flags."""

    def __init__(
        self,
        db: Engine,
        rules: RiskRules,
        *,
        chunk_max_transfers: int = CHUNK_MAX_TRANSFERS,
        evidence: EvidenceSink | None = None,
    ) -> None:
        super().__init__(db, WATERMARK, chunk_max_transfers)
        self._rules = rules
        self._evidence = evidence
        self.flags_raised = 0
        self.lag_s = 0.0  # the last chunk's newest transfer: how long ago it committed

    def read(self, conn: Connection, last: int, head: int) -> Sequence[Any]:
        t = transfers.c
        in_chunk = and_(t.seq > last, t.seq <= head)
        g = gift_sends.c
        rows = conn.execute(
            select(
                t.seq,
                t.id,
                t.code,
                t.created_at_us,
                t.reverses_id,
                g.sender_id,
                g.creator_id,
            )
            .select_from(transfers.outerjoin(gift_sends, g.transfer_id == t.id))
            .where(
                in_chunk,
                t.asset == "COIN",
                or_(
                    and_(t.code == "gift", g.sender_id.is_not(None)),
                    and_(t.code == "topup", t.id.like(TOPUP_PREFIX + "%")),
                    and_(
                        t.code.in_(("refund", "chargeback")),
                        t.reverses_id.like(TOPUP_PREFIX + "%"),
                    ),
                ),
            )
            .order_by(t.seq)
        ).all()
        payout_rows = conn.execute(
            select(t.id, t.created_at_us).where(
                in_chunk,
                t.code == "payout",
                t.kind == "pending",
                t.id.like(PAYOUT_PENDING_PREFIX + "%"),
            )
        ).all()
        newest = conn.execute(select(t.created_at_us).where(t.seq == head)).scalar()
        self.lag_s = max(0.0, time.time() - int(newest or 0) / US_PER_S)
        seen = [
            Seen(
                str(r.code),
                str(r.id),
                int(r.created_at_us),
                r.creator_id,
                r.reverses_id,
                r.sender_id,
            )
            for r in rows
        ]
        seen += [Seen("payout", str(r.id), int(r.created_at_us)) for r in payout_rows]
        return seen

    def apply(self, conn: Connection, rows: Sequence[Any]) -> None:
        facts = _Facts(conn, self._rules, self._evidence)
        drafts: list[FlagDraft] = []
        gifts = facts.from_fresh_senders([r for r in rows if r.code == "gift"])
        for creator, at in _newest_per(gifts).items():
            drafts.extend(facts.funnel(creator, at))
        for r in rows:
            if r.code == "payout":
                payout_id = r.transfer_id.removeprefix(PAYOUT_PENDING_PREFIX)
                drafts.extend(facts.payout(payout_id, r.at_us))
            elif r.code == "topup":
                drafts.extend(facts.top_up(r.transfer_id))
            elif r.code == "chargeback" and r.reverses_id is not None:
                drafts.extend(facts.chargeback(r.reverses_id, r.at_us))
                drafts.extend(facts.clawback(r.transfer_id, r.reverses_id, r.at_us, True))
            elif r.code == "refund" and r.reverses_id is not None:
                drafts.extend(facts.clawback(r.transfer_id, r.reverses_id, r.at_us, False))
        self.flags_raised += raise_flags(conn, drafts)


@dataclass(frozen=True, slots=True)
class Seen:
    """A committed transfer some rule looks at."""

    code: str  # gift, topup, refund, chargeback, payout (a payout's reservation)
    transfer_id: str
    at_us: int
    creator_id: int | None = None  # a gift's
    reverses_id: str | None = None  # a refund's or chargeback's top-up
    sender_id: int | None = None  # a gift's


def _newest_per(gifts: Sequence[Seen]) -> dict[int, int]:
    """Each creator gifted in the chunk, with its newest gift's time."""
    out: dict[int, int] = {}
    for r in gifts:
        assert r.creator_id is not None, "a gift row has its creator"
        out[int(r.creator_id)] = max(out.get(int(r.creator_id), 0), r.at_us)
    return out


class _Facts:
    """What each rule needs, read in the run's transaction."""

    def __init__(
        self, conn: Connection, rules: RiskRules, evidence: EvidenceSink | None = None
    ) -> None:
        self.conn = conn
        self.rules = rules
        self.evidence = evidence
        self.clawed: set[str] = set()  # clawbacks the refund rule saw in this chunk

    def from_fresh_senders(self, gifts: Sequence[Seen]) -> list[Seen]:
        """The gifts whose sender registered shortly before: only their creators can be the
        end of a funnel, so the rest (nearly every gift) costs one read per chunk."""
        senders = sorted({int(g.sender_id) for g in gifts if g.sender_id is not None})
        registered: dict[int, int] = {}
        for part in in_parts(senders):
            registered.update(
                (int(u), int(at))
                for u, at in self.conn.execute(
                    select(users.c.id, users.c.created_at_us).where(users.c.id.in_(part))
                )
            )
        fresh_us = self.rules.funnel_fresh_s * US_PER_S
        return [
            g
            for g in gifts
            if g.sender_id is not None and g.at_us - registered.get(int(g.sender_id), 0) <= fresh_us
        ]

    def funnel(self, creator_id: int, at_us: int) -> list[FlagDraft]:
        r = self.rules
        since = at_us - r.funnel_window_s * US_PER_S
        if self._flagged_since(creator_id, Rule.FUNNEL, since):
            return []  # a person has it in the queue already: no need to count it again
        g, u = gift_sends.c, users.c
        per_sender = self.conn.execute(
            select(g.sender_id, func.sum(g.coins), u.created_at_us)
            .select_from(gift_sends.join(users, u.id == g.sender_id))
            .where(
                g.creator_id == creator_id,
                g.created_at_us >= since,
                g.created_at_us <= at_us,
                g.reversed.is_(False),
            )
            .group_by(g.sender_id, u.created_at_us)
        ).all()
        creator_coins = sum(int(row[1]) for row in per_sender)
        # Only gifters who registered recently can be fresh: read more only about them.
        recent = {
            int(row[0]): (int(row[1]), int(row[2]))
            for row in per_sender
            if int(row[2]) >= since - r.funnel_fresh_s * US_PER_S
        }
        if len(recent) < r.funnel_accounts:
            return []
        first, elsewhere = self._gift_history(creator_id, sorted(recent))
        gifters = [
            FunnelGifter(
                user_id=user,
                registered_at_us=registered,
                first_gift_at_us=first[user],
                coins_to_creator=coins,
                gifts_elsewhere=elsewhere.get(user, 0),
                gift_ids=(),
            )
            for user, (coins, registered) in recent.items()
        ]
        draft = funnel(r, creator_id, gifters, creator_coins, self._payouts_of(creator_id, since))
        if draft is None:
            return []
        draft.evidence["gifts"] = self._gift_ids(creator_id, draft.evidence["users"], since)
        return [draft]

    def _flagged_since(self, user_id: int, rule: Rule, since_us: int) -> bool:
        f = risk_flags.c
        found = self.conn.execute(
            select(f.id)
            .where(
                f.user_id == user_id,
                f.rule == rule.value,
                f.closed_at_us.is_(None),
                f.opened_at_us >= since_us,
            )
            .limit(1)
        ).first()
        return found is not None

    def _gift_history(
        self, creator_id: int, senders: list[int]
    ) -> tuple[dict[int, int], dict[int, int]]:
        g = gift_sends.c
        first: dict[int, int] = {}
        elsewhere: dict[int, int] = {}
        for part in in_parts(senders):
            for sender, at in self.conn.execute(
                select(g.sender_id, func.min(g.created_at_us))
                .where(g.sender_id.in_(part))
                .group_by(g.sender_id)
            ):
                first[int(sender)] = int(at)
            for sender, n in self.conn.execute(
                select(g.sender_id, func.count())
                .where(g.sender_id.in_(part), g.creator_id != creator_id)
                .group_by(g.sender_id)
            ):
                elsewhere[int(sender)] = int(n)
        return first, elsewhere

    def _gift_ids(self, creator_id: int, senders: list[int], since: int) -> list[int]:
        g = gift_sends.c
        return [
            int(i)
            for i in self.conn.execute(
                select(g.id)
                .where(
                    g.creator_id == creator_id,
                    g.sender_id.in_(senders),
                    g.created_at_us >= since,
                )
                .order_by(g.id)
                .limit(EVIDENCE_GIFTS)
            ).scalars()
        ]

    def _payouts_of(self, creator_id: int, since: int) -> list[str]:
        p = payouts.c
        return list(
            self.conn.execute(
                select(p.id).where(p.creator_id == creator_id, p.requested_at_us >= since)
            ).scalars()
        )

    def payout(self, payout_id: str, at_us: int) -> list[FlagDraft]:
        p, g = payouts.c, gift_sends.c
        row = self.conn.execute(
            select(p.creator_id, p.requested_at_us).where(p.id == payout_id)
        ).first()
        if row is None:
            return []
        creator, requested = int(row.creator_id), int(row.requested_at_us)
        before = self.conn.execute(
            select(func.max(p.requested_at_us)).where(
                p.creator_id == creator, p.requested_at_us < requested
            )
        ).scalar()
        since = -1 if before is None else int(before)
        gift_rows = self.conn.execute(
            select(g.id, g.created_at_us)
            .where(g.creator_id == creator, g.created_at_us > since, g.created_at_us <= requested)
            .order_by(g.created_at_us, g.id)
            .limit(EVIDENCE_GIFTS)
        ).all()
        earned_since = int(gift_rows[0].created_at_us) if gift_rows else None
        drafts = self.funnel(creator, at_us)
        if not drafts:
            # A funnel flagged before this request: the cash-out step makes it high.
            window = self.rules.funnel_window_s * US_PER_S
            escalate(self.conn, creator, Rule.FUNNEL, at_us - window, payout_id)
        cycle = fast_cycle(
            self.rules, creator, payout_id, requested, earned_since, [int(r.id) for r in gift_rows]
        )
        return drafts if cycle is None else [*drafts, cycle]

    def _order_of_payment(self, topup_transfer_id: str) -> Any:
        provider, _, payment = topup_transfer_id.removeprefix(TOPUP_PREFIX).partition(":")
        payment = payment.split(":", 1)[0]
        o = payment_orders.c
        return self.conn.execute(
            select(o.id, o.user_id, o.card_fingerprint, o.created_at_us).where(
                o.provider == provider, o.provider_payment_id == payment
            )
        ).first()

    def top_up(self, transfer_id: str) -> list[FlagDraft]:
        order = self._order_of_payment(transfer_id)
        if order is None or not order.card_fingerprint:
            return []
        o = payment_orders.c
        since = int(order.created_at_us) - self.rules.shared_card_window_s * US_PER_S
        uses = self.conn.execute(
            select(o.user_id, o.id, o.created_at_us).where(
                o.card_fingerprint == order.card_fingerprint, o.created_at_us >= since
            )
        ).all()
        return shared_card(
            self.rules,
            order.card_fingerprint,
            [(int(u), str(i), int(a)) for u, i, a in uses],
        )

    def chargeback(self, reverses_id: str, at_us: int) -> list[FlagDraft]:
        order = self._order_of_payment(reverses_id)
        if order is None:
            return []
        r = self.rules
        since = at_us - r.chargeback_window_s * US_PER_S
        g, o, e = gift_sends.c, payment_orders.c, payment_events.c
        creators = self.conn.execute(
            select(g.creator_id)
            .where(g.sender_id == order.user_id, g.created_at_us >= since)
            .distinct()
        ).scalars()
        drafts: list[FlagDraft] = []
        for creator in sorted(int(c) for c in creators):
            gifters = [
                int(s)
                for s in self.conn.execute(
                    select(g.sender_id)
                    .where(g.creator_id == creator, g.created_at_us >= since)
                    .distinct()
                ).scalars()
            ]
            # The provider's dispute events (stored before the ledger moved), not the order's
            # status (set after the clawback, maybe after this run).
            disputed = self.conn.execute(
                select(o.user_id, o.id)
                .select_from(
                    payment_events.join(
                        payment_orders,
                        and_(
                            o.provider == e.provider,
                            o.provider_payment_id == e.payment_id,
                        ),
                    )
                )
                .where(
                    e.kind == "disputed",
                    e.received_at_us >= since,
                    o.user_id.in_(gifters),
                )
                .distinct()
            ).all()
            draft = chargebacks(
                r,
                creator,
                gifters,
                [int(d.user_id) for d in disputed],
                [str(d.id) for d in disputed],
                (since, at_us),
            )
            if draft is not None:
                drafts.append(draft)
        return drafts

    def clawback(
        self, leg_id: str, reverses_id: str, at_us: int, disputed: bool
    ) -> list[FlagDraft]:
        """A refund's or chargeback's leg (coins taken, or a debt): the rule on its top-up,
        once per clawback whichever legs the chunk holds."""
        tag = leg_id.rsplit(":", 1)[0] if leg_id.endswith((":take", ":debt")) else leg_id
        if tag in self.clawed:
            return []
        self.clawed.add(tag)
        order = self._order_of_payment(reverses_id)
        t, g = transfers.c, gift_sends.c
        credited = self.conn.execute(select(t.created_at_us).where(t.id == reverses_id)).scalar()
        if order is None or credited is None:
            return []
        legs = dict(
            self.conn.execute(
                select(t.id, t.amount).where(t.id.in_((tag + ":take", tag + ":debt")))
            ).all()
        )
        # The buyer's gifts paid after the top-up's coins came, before they were clawed back.
        mine = and_(
            g.sender_id == order.user_id,
            g.created_at_us >= int(credited),
            g.created_at_us
            <= min(at_us, int(credited) + self.rules.refund_after_gift_s * US_PER_S),
            g.reversed.is_(False),
        )
        gifted, last = self.conn.execute(
            select(func.coalesce(func.sum(g.coins), 0), func.max(g.created_at_us)).where(mine)
        ).one()
        gift_ids = self.conn.execute(
            select(g.id).where(mine).order_by(g.created_at_us, g.id).limit(EVIDENCE_GIFTS)
        ).scalars()
        draft = refund_after_gift(
            self.rules,
            ClawedTopUp(
                user_id=int(order.user_id),
                clawback_id=tag,
                order_id=str(order.id),
                disputed=disputed,
                coins=sum(int(a) for a in legs.values()),
                unpaid=int(legs.get(tag + ":debt", 0)),
                credited_at_us=int(credited),
                clawed_at_us=at_us,
                gifted_coins=int(gifted),
                gift_ids=tuple(int(i) for i in gift_ids),
                last_gift_at_us=None if last is None else int(last),
            ),
        )
        if draft is None:
            return []
        if not self.rules.refund_after_gift_flags:
            # Evidence only by default (docs/risk.md): a person finds it in the log.
            audit(
                "audit.risk_evidence",
                rule=draft.rule.value,
                user_id=draft.user_id,
                refund=tag,
                cause=draft.evidence["cause"],
                top_up=str(order.id),
                gifts=len(draft.evidence["gifts"]),
                gifted_coins=int(gifted),
                unpaid_coins=draft.evidence["unpaid_coins"],
            )
            if self.evidence is not None:
                self.evidence(draft)
            return []
        return [draft]


class CardTestingScan:
    """The card-testing rule over failed top-ups, from a time position (module docstring)."""

    def __init__(self, db: Engine, rules: RiskRules) -> None:
        self._db = db
        self._rules = rules

    def run_once(self) -> int:
        """One scan; the flags it raised."""
        with self._db.connect() as conn:
            last = watermarks.position_in(conn, FAILURES_WATERMARK)
        if last is None:
            watermarks.ensure(self._db, FAILURES_WATERMARK)
            last = 0
        with self._db.begin() as conn:
            if watermarks.claim(conn, FAILURES_WATERMARK) != last:
                return 0  # another node scanned meanwhile
            new = _failed_since(conn, last - LATE_COMMIT_S * US_PER_S, FAILURES_MAX)
            if not new:
                return 0
            window_from = min(f.at_us for f in new) - self._rules.card_testing_window_s * US_PER_S
            failures = _failures_around(conn, new, window_from)
            raised = raise_flags(conn, card_testing(self._rules, failures))
            watermarks.advance(conn, FAILURES_WATERMARK, max(last, max(f.at_us for f in new)))
        return raised


def _failed(rows: Sequence[Any]) -> list[FailedTopUp]:
    return [
        FailedTopUp(
            str(r.id),
            int(r.user_id),
            r.card_fingerprint,
            r.address_hash,
            int(r.amount_minor),
            int(r.updated_at_us),
        )
        for r in rows
    ]


_FAILED_COLUMNS = (
    payment_orders.c.id,
    payment_orders.c.user_id,
    payment_orders.c.card_fingerprint,
    payment_orders.c.address_hash,
    payment_orders.c.amount_minor,
    payment_orders.c.updated_at_us,
)


def _failed_since(conn: Connection, since_us: int, limit: int) -> list[FailedTopUp]:
    o = payment_orders.c
    rows = conn.execute(
        select(*_FAILED_COLUMNS)
        .where(o.status == FAILED, o.updated_at_us > since_us)
        .order_by(o.updated_at_us)
        .limit(limit)
    ).all()
    return _failed(rows)


def _failures_around(
    conn: Connection, new: Sequence[FailedTopUp], since_us: int
) -> list[FailedTopUp]:
    """Every failure in the window of the new ones, by their users, cards and addresses."""
    o = payment_orders.c
    found: dict[str, FailedTopUp] = {f.order_id: f for f in new}
    subjects = (
        (o.user_id, sorted({f.user_id for f in new})),
        (o.card_fingerprint, sorted({f.card_fingerprint for f in new if f.card_fingerprint})),
        (o.address_hash, sorted({f.address_hash for f in new if f.address_hash})),
    )
    for column, values in subjects:
        for part in in_parts(list(values)):
            rows = conn.execute(
                select(*_FAILED_COLUMNS).where(
                    o.status == FAILED, o.updated_at_us >= since_us, column.in_(part)
                )
            ).all()
            found.update((f.order_id, f) for f in _failed(rows))
    return list(found.values())


class RiskEngine:
    """The rules on a thread of their own (the reads block), every ``interval_s``: the ledger
    caught up in bounded chunks, then one card-testing scan. Any number of nodes may run it."""

    def __init__(self, db: Engine, rules: RiskRules, interval_s: float) -> None:
        assert interval_s > 0
        self.follower = RiskFollower(db, rules)
        self.scan = CardTestingScan(db, rules)
        self._loop = PeriodicThread("risk-rules", self.run, Schedule(interval_s))

    def start(self) -> None:
        self._loop.start()

    def stop(self) -> None:
        self._loop.stop()

    def run(self) -> int:
        """One round; the flags raised."""
        before = self.follower.flags_raised
        passed = self.follower.catch_up(CHUNKS_PER_RUN)
        metrics.RISK_LAG.set(self.follower.lag_s if passed else 0.0)
        raised = self.follower.flags_raised - before + self.scan.run_once()
        metrics.RISK_FLAGS_RAISED.inc(raised)
        return raised
