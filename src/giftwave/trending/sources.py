"""What the trending engine is rebuilt and kept in step from: the live streams (language, the
creator's country) and the committed, unreversed gifts to them (``gift_sends`` joined to its
coins transfer, as the leaderboards read them). SQLAlchemy Core, both backends."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, func, select

from giftwave.db.tables import gift_sends, streams, transfers, users
from giftwave.live.streams import StreamStatus
from giftwave.trending.engine import Item, user_actor

STREAM: Final = "stream"


@dataclass(frozen=True, slots=True)
class LiveStream:
    """A live stream as trending knows it: the item, and what a list shows of it."""

    item: Item
    title: str
    creator_handle: str


_COLUMNS: Final = (
    streams.c.id,
    streams.c.creator_id,
    streams.c.language,
    streams.c.title,
    users.c.country,
    users.c.handle,
)


def _live_stream(r: Any) -> LiveStream:  # a row of _COLUMNS
    item = Item(r.id, STREAM, user_actor(int(r.creator_id)), r.language, r.country)
    return LiveStream(item, r.title, r.handle)


@dataclass(frozen=True, slots=True)
class CommittedGift:
    send_id: str
    stream_id: str
    sender_id: int
    coins: int
    at_us: int


def _gift(r: Any) -> CommittedGift:  # a gift_sends row
    return CommittedGift(
        send_id=r.transfer_id.removesuffix(":c"),  # a gift's coins leg is named after it
        stream_id=r.stream_id,
        sender_id=int(r.sender_id),
        coins=int(r.coins),
        at_us=int(r.created_at_us),
    )


def live_streams(conn: Connection, limit: int) -> dict[str, LiveStream]:
    """The live streams (at most ``limit``, newest first)."""
    rows = conn.execute(
        select(*_COLUMNS)
        .join(users, users.c.id == streams.c.creator_id)
        .where(streams.c.status == StreamStatus.LIVE.value)
        .order_by(streams.c.started_at_us.desc())
        .limit(limit)
    ).all()
    return {r.id: _live_stream(r) for r in rows}


def live_stream(conn: Connection, stream_id: str) -> LiveStream | None:
    """One stream, if it is live."""
    row = conn.execute(
        select(*_COLUMNS)
        .join(users, users.c.id == streams.c.creator_id)
        .where(streams.c.id == stream_id, streams.c.status == StreamStatus.LIVE.value)
    ).first()
    return None if row is None else _live_stream(row)


def committed_gifts(
    conn: Connection, since_us: int, limit: int, *, newest: bool = False
) -> list[CommittedGift]:
    """Committed, unreversed gifts to live streams recorded at or after ``since_us``, oldest
    first: the first ``limit`` of them, or with ``newest`` the latest ``limit``."""
    at = gift_sends.c.created_at_us
    rows = conn.execute(
        select(
            gift_sends.c.transfer_id,
            gift_sends.c.stream_id,
            gift_sends.c.sender_id,
            gift_sends.c.coins,
            at,
        )
        .select_from(
            gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id).join(
                streams, streams.c.id == gift_sends.c.stream_id
            )
        )
        .where(
            streams.c.status == StreamStatus.LIVE.value,
            gift_sends.c.reversed.is_(False),
            at >= since_us,
        )
        .order_by(*((at.desc(), gift_sends.c.id.desc()) if newest else (at, gift_sends.c.id)))
        .limit(limit)
    ).all()
    gifts = [_gift(r) for r in rows]
    return gifts[::-1] if newest else gifts


def gifts_after(
    conn: Connection, after_id: int, limit: int
) -> list[tuple[int, CommittedGift | None]]:
    """The ``gift_sends`` rows with an id above ``after_id``, by id (the first ``limit``):
    each id with its gift, or None for a gift reversed since. Every row, whatever its stream:
    the poll must see every id to know which are still to come (``service.SeenIds``)."""
    g = gift_sends.c
    rows = conn.execute(
        select(g.id, g.transfer_id, g.stream_id, g.sender_id, g.coins, g.created_at_us, g.reversed)
        .where(g.id > after_id)
        .order_by(g.id)
        .limit(limit)
    ).all()
    return [(int(r.id), None if r.reversed else _gift(r)) for r in rows]


def last_gift_id(conn: Connection) -> int:
    """The highest ``gift_sends`` id (0 when there is none)."""
    return int(conn.execute(select(func.coalesce(func.max(gift_sends.c.id), 0))).scalar_one())
