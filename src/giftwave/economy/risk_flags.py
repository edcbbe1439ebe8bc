"""Risk flags on a user: while one is open, their payouts wait for a person.

The payout policy reads the open ones (economy/payout_policy.py). Two writers: a person
(``open_flag``/``close_flag``, with a free ``kind``), and the rules engine
(economy/risk_follower.py), whose flags carry their rule, evidence (JSON), severity and a
natural key: the same pattern seen again, by any node, is refused by the key's unique
constraint, so it stays one flag.

A flag's state is a person's decision on it (the admin risk queue, economy/risk_review.py):

    open      new; payouts wait, top-ups are held to the flagged limit
    held      looked at and kept: the same effects as open
    frozen    the user's ledger accounts are frozen: no gifts, top-ups or payouts
    cleared   closed: no effect any more
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

import orjson
from sqlalchemy import Connection, func, insert, select, update

from giftwave.clock import now_us
from giftwave.db.tables import payment_orders, risk_flags
from giftwave.db.upsert import insert_for
from giftwave.economy.risk_rules import FlagDraft, Rule, Severity

KIND_MAX_CHARS: Final = 32
NOTE_MAX_CHARS: Final = 500
LIST_MAX: Final = 200


class FlagState(enum.StrEnum):
    OPEN = "open"
    HELD = "held"
    CLEARED = "cleared"
    FROZEN = "frozen"


@dataclass(frozen=True, slots=True)
class RiskFlag:
    id: int
    user_id: int
    kind: str
    rule: str | None
    severity: str
    state: FlagState
    evidence: dict[str, Any]
    note: str | None
    opened_at_us: int
    decided_by: int | None
    decided_at_us: int | None
    decision_note: str | None


def _flag_of(row: Any) -> RiskFlag:
    return RiskFlag(
        id=int(row.id),
        user_id=int(row.user_id),
        kind=row.kind,
        rule=row.rule,
        severity=row.severity,
        state=FlagState(row.state),
        evidence={} if row.evidence is None else orjson.loads(row.evidence),
        note=row.note,
        opened_at_us=int(row.opened_at_us),
        decided_by=row.decided_by,
        decided_at_us=row.decided_at_us,
        decision_note=row.decision_note,
    )


def open_flag_kinds(conn: Connection, user_id: int) -> tuple[str, ...]:
    """The kinds of the user's open flags, oldest first."""
    rows = conn.execute(
        select(risk_flags.c.kind)
        .where(risk_flags.c.user_id == user_id, risk_flags.c.closed_at_us.is_(None))
        .order_by(risk_flags.c.id)
    ).scalars()
    return tuple(rows)


def open_flag(
    conn: Connection, user_id: int, kind: str, note: str | None = None, by: int | None = None
) -> int:
    """A new open flag; its id."""
    assert 0 < len(kind) <= KIND_MAX_CHARS
    assert note is None or len(note) <= NOTE_MAX_CHARS
    flag_id = conn.execute(
        insert(risk_flags)
        .values(user_id=user_id, kind=kind, note=note, opened_by=by, opened_at_us=now_us())
        .returning(risk_flags.c.id)
    ).scalar_one()
    return int(flag_id)


def close_flag(conn: Connection, flag_id: int, by: int | None = None) -> bool:
    """Close an open flag; False when it was closed already (or is not there)."""
    done = conn.execute(
        update(risk_flags)
        .where(risk_flags.c.id == flag_id, risk_flags.c.closed_at_us.is_(None))
        .values(closed_at_us=now_us(), closed_by=by, state=FlagState.CLEARED.value)
    )
    return done.rowcount == 1


def raise_flags(conn: Connection, drafts: Sequence[FlagDraft]) -> int:
    """Write the rules' flags, each once per natural key; how many were new."""
    new = 0
    at = now_us()
    for draft in drafts:
        done = conn.execute(
            insert_for(conn, risk_flags)
            .values(
                user_id=draft.user_id,
                kind=draft.rule.value,
                rule=draft.rule.value,
                natural_key=draft.natural_key,
                evidence=orjson.dumps(draft.evidence).decode(),
                severity=draft.severity.value,
                state=FlagState.OPEN.value,
                opened_at_us=at,
            )
            .on_conflict_do_nothing(index_elements=["natural_key"])
            .returning(risk_flags.c.id)
        )
        # Counted by the row it returned: on PostgreSQL this INSERT's rowcount is -1 (the
        # driver's answer to an INSERT that returns the table's generated key).
        new += done.first() is not None
    return new


def escalate(conn: Connection, user_id: int, rule: Rule, since_us: int, payout_id: str) -> int:
    """The user's open flags of ``rule`` (opened since ``since_us``) turn high, with the payout
    that made them so in their evidence: the same flag row a person may already be reading,
    not a second one. How many changed. Called by the rules engine in the transaction that
    holds its watermark, so no other node rewrites the evidence meanwhile."""
    f = risk_flags.c
    rows = conn.execute(
        select(f.id, f.evidence).where(
            f.user_id == user_id,
            f.rule == rule.value,
            f.closed_at_us.is_(None),
            f.opened_at_us >= since_us,
        )
    ).all()
    changed = 0
    for row in rows:
        evidence = {} if row.evidence is None else orjson.loads(row.evidence)
        seen = list(evidence.get("payouts", []))
        if payout_id in seen:
            continue
        evidence["payouts"] = [*seen, payout_id]
        conn.execute(
            update(risk_flags)
            .where(f.id == row.id)
            .values(severity=Severity.HIGH.value, evidence=orjson.dumps(evidence).decode())
        )
        changed += 1
    return changed


def find_flag(conn: Connection, flag_id: int) -> RiskFlag | None:
    row = conn.execute(select(risk_flags).where(risk_flags.c.id == flag_id)).first()
    return None if row is None else _flag_of(row)


def list_flags(
    conn: Connection, states: Sequence[FlagState], user_id: int | None, limit: int
) -> list[RiskFlag]:
    """Flags in these states (of one user), newest first."""
    assert 1 <= limit <= LIST_MAX
    query = (
        select(risk_flags)
        .where(risk_flags.c.state.in_([s.value for s in states]))
        .order_by(risk_flags.c.opened_at_us.desc(), risk_flags.c.id.desc())
        .limit(limit)
    )
    if user_id is not None:
        query = query.where(risk_flags.c.user_id == user_id)
    return [_flag_of(r) for r in conn.execute(query)]


def has_active_flag(conn: Connection, user_id: int) -> bool:
    """Any flag not cleared: what lowers the user's top-up limit."""
    found = conn.execute(
        select(risk_flags.c.id)
        .where(risk_flags.c.user_id == user_id, risk_flags.c.closed_at_us.is_(None))
        .limit(1)
    ).first()
    return found is not None


def is_frozen(conn: Connection, user_id: int) -> bool:
    found = conn.execute(
        select(risk_flags.c.id)
        .where(
            risk_flags.c.user_id == user_id,
            risk_flags.c.state == FlagState.FROZEN.value,
            risk_flags.c.closed_at_us.is_(None),
        )
        .limit(1)
    ).first()
    return found is not None


def last_card_testing_us(conn: Connection, user_id: int, since_us: int) -> int | None:
    """When the user's newest card-testing flag (not cleared) opened, if since ``since_us``."""
    at = conn.execute(
        select(func.max(risk_flags.c.opened_at_us)).where(
            risk_flags.c.user_id == user_id,
            risk_flags.c.rule == Rule.CARD_TESTING.value,
            risk_flags.c.closed_at_us.is_(None),
            risk_flags.c.opened_at_us >= since_us,
        )
    ).scalar()
    return None if at is None else int(at)


def last_card_testing_at_address(conn: Connection, address_hash: str, since_us: int) -> int | None:
    """When the newest card-testing flag (not cleared, since ``since_us``) of anyone who
    ordered from this hashed address in that time opened: a tester's new account, from the
    same address, is blocked at its first order rather than at the next scan."""
    o = payment_orders.c
    at = conn.execute(
        select(func.max(risk_flags.c.opened_at_us))
        .select_from(risk_flags.join(payment_orders, o.user_id == risk_flags.c.user_id))
        .where(
            o.address_hash == address_hash,
            o.updated_at_us >= since_us,
            risk_flags.c.rule == Rule.CARD_TESTING.value,
            risk_flags.c.closed_at_us.is_(None),
            risk_flags.c.opened_at_us >= since_us,
        )
    ).scalar()
    return None if at is None else int(at)


def decide(
    conn: Connection, flag_id: int, state: FlagState, by: int | None, note: str | None
) -> bool:
    """A person's decision; clearing closes the flag. False when it was cleared already."""
    assert note is None or len(note) <= NOTE_MAX_CHARS
    at = now_us()
    values: dict[str, Any] = {
        "state": state.value,
        "decided_by": by,
        "decided_at_us": at,
        "decision_note": note,
    }
    if state is FlagState.CLEARED:
        values |= {"closed_at_us": at, "closed_by": by}
    done = conn.execute(
        update(risk_flags)
        .where(risk_flags.c.id == flag_id, risk_flags.c.closed_at_us.is_(None))
        .values(**values)
    )
    return done.rowcount == 1
