"""The proof, from the database, that the campaign lost, doubled and invented nothing.

Every operation a client journaled is looked up by its idempotency key:

- acknowledged (ok): in the ledger exactly once, else it is ``lost``;
- refused: not in the ledger at all, else it is ``phantom`` (the client was told no);
- unknown: 0 or 1 times, both honest answers to a request nobody answered.

And the other way round: whatever the ledger holds for the campaign's people that no client
sent is ``phantom``. Then ``ledger verify``, every person's balance against their own history,
and every viewer's screen against the gifts its room committed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, func, select

from giftwave.chaos.workload import Op, Outcome, Person, Screen
from giftwave.db.tables import accounts, gift_sends, payment_orders, payouts, transfers
from giftwave.economy.payouts import POSTED_SUFFIX, pending_id
from giftwave.economy.topups import topup_id
from giftwave.ledger.verify import verify_ledger


@dataclass(slots=True)
class Findings:
    operations: int = 0
    acknowledged: int = 0
    refused: int = 0
    unknown: int = 0
    unknown_committed: int = 0
    lost: int = 0
    duplicated: int = 0
    phantom: int = 0
    ledger_verified: bool = False
    balances_checked: int = 0
    balance_mismatches: int = 0
    viewers_checked: int = 0
    gifts_missing_on_screens: int = 0
    gifts_shown_twice: int = 0
    problems: list[str] = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.problems) < 50:  # the summary stays readable whatever went wrong
            self.problems.append(text)


def _balance(conn: Connection, name: str) -> tuple[int, int]:
    """(credits posted, debits posted + pending) of an account; zeros if it was never made."""
    row = conn.execute(
        select(
            accounts.c.credits_posted, accounts.c.debits_posted, accounts.c.debits_pending
        ).where(accounts.c.name == name)
    ).first()
    if row is None:
        return 0, 0
    return int(row.credits_posted), int(row.debits_posted) + int(row.debits_pending)


def check(
    conn: Connection,
    ops: list[Op],
    viewers: list[Person],
    creators: list[Person],
    opening_coins: dict[int, int],
    screens: list[Screen],
) -> Findings:
    f = Findings(operations=len(ops))
    for op in ops:
        f.acknowledged += op.outcome is Outcome.OK
        f.refused += op.outcome is Outcome.REFUSED
        f.unknown += op.outcome is Outcome.UNKNOWN
    people = [p.user_id for p in viewers + creators]
    committed = _check_gifts(conn, ops, people, f)
    _check_topups(conn, ops, f)
    _check_payouts(conn, ops, [c.user_id for c in creators], f)
    report = verify_ledger(conn)
    f.ledger_verified = report.ok
    for problem in report.problems[:10]:
        f.note(f"ledger verify: {problem}")
    _check_balances(conn, ops, viewers, creators, opening_coins, f)
    _check_screens(committed, screens, f)
    return f


def _judge(f: Findings, op: Op, times: int) -> None:
    if times > 1:
        f.duplicated += 1
        f.note(f"{op.kind} {op.key} of user {op.user_id} is in the ledger {times} times")
    if op.outcome is Outcome.OK and times == 0:
        f.lost += 1
        f.note(f"{op.kind} {op.key} of user {op.user_id} acknowledged, not in the ledger")
    elif op.outcome is Outcome.REFUSED and times > 0:
        f.phantom += 1
        f.note(f"{op.kind} {op.key} of user {op.user_id} refused ({op.code}), yet committed")
    elif op.outcome is Outcome.UNKNOWN and times == 1:
        f.unknown_committed += 1


def _check_gifts(
    conn: Connection, ops: list[Op], people: list[int], f: Findings
) -> dict[str, set[str]]:
    """Each gift by (sender, key); returns the committed send ids of each stream."""
    rows = conn.execute(
        select(gift_sends.c.sender_id, gift_sends.c.idempotency_key, gift_sends.c.stream_id)
        .select_from(gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id))
        .where(gift_sends.c.sender_id.in_(people))
    ).all()
    times = Counter((int(r.sender_id), str(r.idempotency_key)) for r in rows)
    sent = {(op.user_id, op.key) for op in ops if op.kind.startswith("gift")}
    for op in ops:
        if op.kind.startswith("gift"):
            _judge(f, op, times[(op.user_id, op.key)])
    for (sender, key), _n in times.items():
        if (sender, key) not in sent:
            f.phantom += 1
            f.note(f"gift {key} of user {sender} is in the ledger; no client sent it")
    committed: dict[str, set[str]] = {}
    for r in rows:
        committed.setdefault(str(r.stream_id), set()).add(
            f"gift:{int(r.sender_id)}:{r.idempotency_key}"
        )
    return committed


def _check_topups(conn: Connection, ops: list[Op], f: Findings) -> None:
    orders = {
        str(r.id): r
        for r in conn.execute(
            select(
                payment_orders.c.id,
                payment_orders.c.user_id,
                payment_orders.c.idempotency_key,
                payment_orders.c.provider,
                payment_orders.c.provider_payment_id,
            )
        ).all()
    }
    credited = Counter(
        str(r.id)
        for r in conn.execute(select(transfers.c.id).where(transfers.c.id.like("topup:%"))).all()
    )
    keys = Counter((int(r.user_id), str(r.idempotency_key)) for r in orders.values())
    ours: set[str] = set()
    for op in ops:
        if op.kind != "topup":
            continue
        order = orders.get(op.ref)
        if keys[(op.user_id, op.key)] > 1:
            f.duplicated += 1
        if order is None or order.provider_payment_id is None:
            _judge(f, op, 0)
            continue
        base = topup_id(str(order.provider), str(order.provider_payment_id))
        ours.add(base)
        _judge(f, op, credited[base])
    for transfer_id in credited:
        if not any(transfer_id.startswith(base) for base in ours):
            f.phantom += 1
            f.note(f"top-up {transfer_id} is in the ledger; no client paid it")


def _check_payouts(conn: Connection, ops: list[Op], creator_ids: list[int], f: Findings) -> None:
    rows = conn.execute(
        select(payouts.c.id, payouts.c.creator_id, payouts.c.idempotency_key).where(
            payouts.c.creator_id.in_(creator_ids)
        )
    ).all()
    by_key = Counter((int(r.creator_id), str(r.idempotency_key)) for r in rows)
    reserved = Counter(
        str(r.id)
        for r in conn.execute(
            select(transfers.c.id).where(
                transfers.c.id.in_([pending_id(str(r.id)) for r in rows] or [""])
            )
        ).all()
    )
    # An approval posts the reservation under the reservation's id plus a suffix.
    posted = Counter(
        str(r.id)
        for r in conn.execute(
            select(transfers.c.id).where(
                transfers.c.id.in_([pending_id(str(r.id)) + POSTED_SUFFIX for r in rows] or [""])
            )
        ).all()
    )
    asked = {(op.user_id, op.key) for op in ops if op.kind == "payout"}
    id_by_key = {(int(r.creator_id), str(r.idempotency_key)): str(r.id) for r in rows}
    for op in ops:
        if op.kind == "payout":
            if by_key[(op.user_id, op.key)] > 1:
                f.duplicated += 1
            payout_id = id_by_key.get((op.user_id, op.key))
            _judge(f, op, 0 if payout_id is None else reserved[pending_id(payout_id)])
        elif op.kind == "approve":
            _judge(f, op, posted[pending_id(op.key) + POSTED_SUFFIX])
    for key in by_key:
        if key not in asked:
            f.phantom += 1
            f.note(f"payout {key[1]} of creator {key[0]} exists; no client asked for it")


def _check_balances(
    conn: Connection,
    ops: list[Op],
    viewers: list[Person],
    creators: list[Person],
    opening_coins: dict[int, int],
    f: Findings,
) -> None:
    """A person's balance is what their own journal says: opening coins, plus the top-ups
    acknowledged, minus the gifts acknowledged (at the price each receipt states)."""
    spent: Counter[int] = Counter()
    bought: Counter[int] = Counter()
    earned: Counter[int] = Counter()
    cashed: Counter[int] = Counter()
    for op in ops:
        if op.outcome is not Outcome.OK:
            continue
        receipt: dict[str, Any] = op.receipt or {}
        if op.kind.startswith("gift"):
            spent[op.user_id] += int(receipt["coins"])
            earned[int(receipt["creator_id"])] += int(receipt["diamonds"])
        elif op.kind == "topup":
            bought[op.user_id] += op.coins
        elif op.kind == "payout":
            cashed[op.user_id] += int(receipt["diamonds"])
    for viewer in viewers:
        credits, debits = _balance(conn, f"user:{viewer.user_id}:coins")
        expected = opening_coins.get(viewer.user_id, 0) + bought[viewer.user_id]
        expected -= spent[viewer.user_id]
        f.balances_checked += 1
        if credits - debits != expected:
            f.balance_mismatches += 1
            f.note(f"user {viewer.user_id}: {credits - debits} coins, own history: {expected}")
    for creator in creators:
        credits, debits = _balance(conn, f"user:{creator.user_id}:diamonds")
        f.balances_checked += 1
        if (credits, debits) != (earned[creator.user_id], cashed[creator.user_id]):
            f.balance_mismatches += 1
            f.note(
                f"creator {creator.user_id}: {credits} diamonds in, {debits} out; "
                f"own history: {earned[creator.user_id]} in, {cashed[creator.user_id]} out"
            )


def _check_screens(committed: dict[str, set[str]], screens: list[Screen], f: Findings) -> None:
    for screen in screens:
        if not screen.stayed:
            continue
        f.viewers_checked += 1
        expected = committed.get(screen.stream_id, set())
        missing = expected - screen.shown.keys()
        extra = screen.shown.keys() - expected
        f.gifts_missing_on_screens += len(missing)
        f.gifts_shown_twice += screen.repeats
        if missing:
            f.note(f"a viewer of {screen.stream_id} never showed {len(missing)} gifts")
        if extra:
            f.phantom += len(extra)
            f.note(f"a viewer of {screen.stream_id} showed {len(extra)} gifts never committed")


def count_rows(conn: Connection) -> int:
    """Committed gifts in all: a figure for the summary."""
    return int(
        conn.execute(
            select(func.count()).select_from(
                gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id)
            )
        ).scalar_one()
    )
