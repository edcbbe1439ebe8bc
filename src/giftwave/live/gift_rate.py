"""A stream's committed gifts over the last minute, per second: where the studio's "gifts per
minute" starts when the page loads (it then counts the room's events itself). A
``gift_sends`` row exists exactly when its gift committed (ledger/annex.py), so these are
committed gifts; a reversed one no longer counts."""

from __future__ import annotations

from typing import Final

from sqlalchemy import Connection, func, select

from giftwave.db.tables import gift_sends

WINDOW_S: Final = 60  # studio.js RATE_WINDOW_S
US_PER_S: Final = 1_000_000


def recent_gifts_per_second(
    conn: Connection, stream_id: str, creator_id: int, now_us: int, window_s: int = WINDOW_S
) -> list[tuple[int, int]]:
    """``[(unix second, gifts), ...]`` for the last ``window_s`` seconds, oldest first: at most
    ``window_s`` + 1 rows, read through the creator-and-time index."""
    assert 0 < window_s <= 3600
    second = (gift_sends.c.created_at_us // US_PER_S).label("second")
    rows = conn.execute(
        select(second, func.sum(gift_sends.c.count))
        .where(
            gift_sends.c.creator_id == creator_id,
            gift_sends.c.created_at_us > now_us - window_s * US_PER_S,
            gift_sends.c.stream_id == stream_id,
            gift_sends.c.reversed.is_(False),
        )
        .group_by(second)
        .order_by(second)
    ).all()
    return [(int(s), int(n)) for s, n in rows]
