"""Risk flags on a user: while one is open, their payouts wait for a person.

The minimal hook the payout policy reads (economy/payout_policy.py). Issue 24's risk checks
(unusual gifting, chargebacks, a new device…) open flags here with their own ``kind`` and close
them when cleared; nothing else needs to change for the policy to honour them.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, insert, select, update

from giftwave.clock import now_us
from giftwave.db.tables import risk_flags

KIND_MAX_CHARS: Final = 32
NOTE_MAX_CHARS: Final = 500


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
        .values(closed_at_us=now_us(), closed_by=by)
    )
    return done.rowcount == 1
