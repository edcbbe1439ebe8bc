"""The durable record of who decided each payout and why, and the facts the policy reads.

Every decision is one row of ``payout_decisions`` (one per payout and actor: the policy's at
the request, then a person's, or giftwave's own when nobody decided in time), written in the
same transaction as the change it explains, and one ``audit.payout_decided`` log line after
the commit. The admin console lists them. The expiry's is written by the ledger's void
(ledger/annex.py ``PAYOUT_EXPIRED_DECISION``: actor ``system``, outcome ``expire``, reason
``review_timeout``), since the ledger, not this module, voids an unreviewed reservation.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from sqlalchemy import Connection, String, func, insert, select
from sqlalchemy.engine import RowMapping

from giftwave.db.tables import gift_sends, payout_decisions, payouts, transfers
from giftwave.db.upsert import insert_new
from giftwave.economy.payout_policy import AutoApproval, Decision, PayoutFacts, Reason
from giftwave.economy.risk_flags import open_flag_kinds
from giftwave.logs import audit

POLICY: Final = "policy"
ADMIN: Final = "admin"
OPERATOR: Final = "operator"  # the holder of the admin token
SYSTEM: Final = "system"  # giftwave itself: the ledger's expiry of an unreviewed payout
EXPIRE: Final = "expire"
NOTE_MAX_CHARS: Final = 500
LIST_MAX: Final = 500


@dataclass(frozen=True, slots=True)
class PayoutDecision:
    id: int
    payout_id: str
    creator_id: int
    actor: str  # policy | admin | operator | system
    reviewer_id: int | None
    outcome: str  # approve | review | reject | expire
    reasons: tuple[str, ...]
    note: str | None
    decided_at_us: int


def read_facts(
    conn: Connection,
    rule: AutoApproval,
    creator_id: int,
    amount_cents: int,
    debt_diamonds: int,
    now_us: int,
) -> PayoutFacts:
    """What the policy needs, read in the request's transaction (nothing when it is off)."""
    if not rule.on:
        return PayoutFacts(amount_cents, now_us, None, (), debt_diamonds, 0, 0)
    since = rule.quiet_since_us(now_us)
    first = conn.execute(
        select(func.min(gift_sends.c.created_at_us)).where(
            gift_sends.c.creator_id == creator_id, gift_sends.c.reversed.is_(False)
        )
    ).scalar_one()
    returned = conn.execute(
        select(func.count())
        .select_from(payouts)
        .where(
            payouts.c.creator_id == creator_id,
            payouts.c.status == "returned",
            # Returned before migration 0025 recorded when: counted from when it started to be sent.
            func.coalesce(
                payouts.c.returned_at_us,
                payouts.c.processing_since_us,
                payouts.c.requested_at_us,
            )
            >= since,
        )
    ).scalar_one()
    # A reversal's coins leg is the gift's id + ":rev:c" where the gift's own is + ":c"
    # (economy/reversals.py): its time is the reversal's, found by the unique transfer id.
    # Only the creator's reversed gifts are read (a partial index).
    gift_id = func.substr(
        gift_sends.c.transfer_id, 1, func.length(gift_sends.c.transfer_id) - 2, type_=String
    )
    reversals = gift_sends.join(transfers, transfers.c.id == gift_id + ":rev:c")
    reversed_gifts = conn.execute(
        select(func.count())
        .select_from(reversals)
        .where(
            gift_sends.c.creator_id == creator_id,
            gift_sends.c.reversed.is_(True),
            transfers.c.created_at_us >= since,
        )
    ).scalar_one()
    return PayoutFacts(
        amount_cents=amount_cents,
        now_us=now_us,
        first_earning_us=None if first is None else int(first),
        open_risk_flags=open_flag_kinds(conn, creator_id),
        debt_diamonds=debt_diamonds,
        returned_payouts_recent=int(returned),
        reversed_gifts_recent=int(reversed_gifts),
    )


def record(
    conn: Connection,
    *,
    payout_id: str,
    creator_id: int,
    actor: str,
    reviewer_id: int | None,
    outcome: str,
    reasons: Sequence[str],
    note: str | None,
    now_us: int,
) -> bool:
    """Write a decision; False when this actor decided this payout already (a replay)."""
    assert actor in (POLICY, ADMIN, OPERATOR)
    return insert_new(
        conn,
        insert(payout_decisions).values(
            payout_id=payout_id,
            creator_id=creator_id,
            actor=actor,
            reviewer_id=reviewer_id,
            outcome=outcome,
            reasons=",".join(reasons),
            note=None if note is None else note[:NOTE_MAX_CHARS],
            decided_at_us=now_us,
        ),
    )


def record_policy(
    conn: Connection, payout_id: str, creator_id: int, decision: Decision, now_us: int
) -> bool:
    return record(
        conn,
        payout_id=payout_id,
        creator_id=creator_id,
        actor=POLICY,
        reviewer_id=None,
        outcome=decision.outcome,
        reasons=decision.reasons,
        note=None,
        now_us=now_us,
    )


def record_person(
    conn: Connection,
    payout_id: str,
    creator_id: int,
    reviewer_id: int | None,
    approve: bool,
    note: str | None,
    now_us: int,
) -> bool:
    """An admin's (or the operator token's) approval or rejection."""
    return record(
        conn,
        payout_id=payout_id,
        creator_id=creator_id,
        actor=OPERATOR if reviewer_id is None else ADMIN,
        reviewer_id=reviewer_id,
        outcome="approve" if approve else "reject",
        reasons=(Reason.MANUAL_APPROVAL if approve else Reason.MANUAL_REJECTION,),
        note=note,
        now_us=now_us,
    )


def audit_decision(decision: PayoutDecision) -> None:
    audit(
        "audit.payout_decided",
        payout_id=decision.payout_id,
        creator_id=decision.creator_id,
        actor=decision.actor,
        reviewer_id=decision.reviewer_id,
        outcome=decision.outcome,
        reasons=",".join(decision.reasons),
    )


def policy_decision(conn: Connection, payout_id: str) -> PayoutDecision | None:
    found = decisions(conn, payout_id=payout_id, actor=POLICY, limit=1)
    return found[0] if found else None


def decisions(
    conn: Connection,
    *,
    payout_id: str | None = None,
    actor: str | None = None,
    limit: int = 100,
) -> list[PayoutDecision]:
    """Newest first; of one payout, or every payout's."""
    assert 0 < limit <= LIST_MAX
    query = select(payout_decisions).order_by(payout_decisions.c.id.desc()).limit(limit)
    if payout_id is not None:
        query = query.where(payout_decisions.c.payout_id == payout_id)
    if actor is not None:
        query = query.where(payout_decisions.c.actor == actor)
    return [_to_decision(r._mapping) for r in conn.execute(query).all()]


def decisions_by_payout(
    conn: Connection, payout_ids: Sequence[str]
) -> dict[str, list[PayoutDecision]]:
    """The decisions on each of these payouts (a page of the queue), newest first."""
    found: dict[str, list[PayoutDecision]] = {}
    if not payout_ids:
        return found
    rows = conn.execute(
        select(payout_decisions)
        .where(payout_decisions.c.payout_id.in_(list(payout_ids)))
        .order_by(payout_decisions.c.id.desc())
    ).all()
    for row in rows:
        decision = _to_decision(row._mapping)
        found.setdefault(decision.payout_id, []).append(decision)
    return found


def _to_decision(m: RowMapping) -> PayoutDecision:
    reasons = str(m["reasons"])
    return PayoutDecision(
        id=int(m["id"]),
        payout_id=m["payout_id"],
        creator_id=int(m["creator_id"]),
        actor=m["actor"],
        reviewer_id=m["reviewer_id"],
        outcome=m["outcome"],
        reasons=tuple(x for x in reasons.split(",") if x),
        note=m["note"],
        decided_at_us=int(m["decided_at_us"]),
    )
