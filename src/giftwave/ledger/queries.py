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
