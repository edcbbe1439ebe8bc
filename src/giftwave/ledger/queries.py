"""Read-only questions about committed transfers, for the economy above the ledger."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection, func, select

from giftwave.db.tables import transfers


def existing_transfer_ids(conn: Connection, ids: Iterable[str]) -> set[str]:
    wanted = list(ids)
    if not wanted:
        return set()
    rows = conn.execute(select(transfers.c.id).where(transfers.c.id.in_(wanted))).all()
    return {str(r.id) for r in rows}


def transfer_amounts(conn: Connection, ids: Iterable[str]) -> dict[str, int]:
    """The amount of each of these transfers that exists, by id."""
    wanted = list(ids)
    if not wanted:
        return {}
    rows = conn.execute(
        select(transfers.c.id, transfers.c.amount).where(transfers.c.id.in_(wanted))
    ).all()
    return {str(r.id): int(r.amount) for r in rows}


def transfer_exists(conn: Connection, transfer_id: str) -> bool:
    return bool(existing_transfer_ids(conn, [transfer_id]))


def reversed_amount(conn: Connection, original_id: str) -> int:
    """The total of every transfer that points back at ``original_id``."""
    total = conn.execute(
        select(func.coalesce(func.sum(transfers.c.amount), 0)).where(
            transfers.c.reverses_id == original_id
        )
    ).scalar_one()
    return int(total)


def transfer_kinds_for_pending(conn: Connection, pending_id: str) -> list[tuple[str, str]]:
    """(id, kind) of what resolved a pending transfer: a post, a void, or an expiry's void."""
    rows = conn.execute(
        select(transfers.c.id, transfers.c.kind).where(transfers.c.pending_id == pending_id)
    ).all()
    return [(str(r.id), str(r.kind)) for r in rows]


def first_seq_at(conn: Connection, at_us: int) -> int:
    """Where the transfers committed at or after ``at_us`` start: ``seq >= first_seq_at(…)``
    selects them, found by a binary search on the primary key (tens of lookups, never a scan),
    for reads of a recent window of the ledger. Times rise with ``seq`` (batches commit one at
    a time under the chain head) except for clock steps between nodes: a caller keeps its own
    ``created_at_us`` filter, and reads from a margin before the time it cares about. One past
    the last transfer when none is that new."""
    # Two queries: each answered from the key's ends (together, SQLite would scan).
    lowest = conn.execute(select(func.min(transfers.c.seq))).scalar()
    highest = conn.execute(select(func.max(transfers.c.seq))).scalar()
    if lowest is None or highest is None:
        return 1
    lo, hi = int(lowest), int(highest) + 1
    while lo < hi:
        mid = (lo + hi) // 2
        at = conn.execute(
            select(transfers.c.created_at_us)
            .where(transfers.c.seq >= mid)
            .order_by(transfers.c.seq)
            .limit(1)
        ).scalar_one()
        if int(at) >= at_us:
            hi = mid
        else:
            lo = mid + 1
    return lo
