"""Top gifters: of a live stream (in the room, from its events), and of a creator over a week
or all time (from the database). Ranked the same way: coins desc, then who got there first,
then user id (stable)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import Connection, Engine, func, select

from giftwave.db.tables import gift_sends, transfers, users
from giftwave.errors import Code, NotFound
from giftwave.identity.users import Role, find_user

R = TypeVar("R")
# (rank, user id, handle, amount) → one line of a board as a room shows it
RankLine = Callable[[int, int, str, int], R]


@dataclass(slots=True)
class _Entry:
    user_id: int
    handle: str
    coins: int
    reached_seq: int  # when the total last changed: earlier wins a tie


class Leaderboard(Generic[R]):
    """A live board of an amount (coins for gifts, likes for taps) per user, shown as ``line``
    makes each place (``live.events.Ranked``, ``RankedLiker``)."""

    def __init__(self, line: RankLine[R]) -> None:
        self._line = line
        self._entries: dict[int, _Entry] = {}
        self._seq = 0

    def add(self, user_id: int, handle: str, coins: int) -> None:
        self._seq += 1
        entry = self._entries.get(user_id)
        if entry is None:
            self._entries[user_id] = _Entry(user_id, handle, coins, self._seq)
        else:
            entry.coins += coins
            entry.reached_seq = self._seq

    def has(self, user_id: int) -> bool:
        return user_id in self._entries

    def remove(self, user_id: int, coins: int) -> None:
        """``coins`` taken back (a reversed gift); a total that reaches zero leaves the board.
        Among equal totals it keeps the place its last gift gave it (a room rebuilt from the
        database orders them by the latest gift that still counts: only a tie can differ)."""
        entry = self._entries.get(user_id)
        if entry is None:
            return
        entry.coins -= coins
        if entry.coins <= 0:
            del self._entries[user_id]

    def restore(self, gifters: Iterable[tuple[int, str, int]]) -> None:
        """Start again from (user id, handle, coins) in the order their totals were reached,
        earliest first (a room rebuilt from the database: by each one's latest gift)."""
        self._entries = {}
        self._seq = 0
        for user_id, handle, coins in gifters:
            self._seq += 1
            self._entries[user_id] = _Entry(user_id, handle, coins, self._seq)

    def top(self, n: int = 10) -> list[R]:
        ranked = sorted(self._entries.values(), key=lambda e: (-e.coins, e.reached_seq, e.user_id))[
            :n
        ]
        return [self._line(i + 1, e.user_id, e.handle, e.coins) for i, e in enumerate(ranked)]


def creator_top_gifters(
    conn: Connection, creator_id: int, since_us: int | None, limit: int
) -> list[dict[str, Any]]:
    """A creator's top gifters over committed, unreversed gifts since ``since_us`` (all time
    when None), ranked like a room's board: coins desc, then whoever reached their total
    first (the earlier last gift), then user id."""
    where = [gift_sends.c.creator_id == creator_id]
    if since_us is not None:
        where.append(gift_sends.c.created_at_us >= since_us)
    return _top_gifters(conn, where, limit)


def stream_top_gifters(conn: Connection, stream_id: str, limit: int) -> list[dict[str, Any]]:
    """One stream's top gifters, from the same committed, unreversed gifts and ranked the same
    way as its room's board and a creator's: what a thank-you after the stream is offered."""
    return _top_gifters(conn, [gift_sends.c.stream_id == stream_id], limit)


def _top_gifters(conn: Connection, where: list[Any], limit: int) -> list[dict[str, Any]]:
    """Committed (the coins leg is in ``transfers``), unreversed gifts matching ``where``,
    summed per sender: rank, user id, handle, coins."""
    coins = func.sum(gift_sends.c.coins).label("coins")
    last_at = func.max(gift_sends.c.created_at_us).label("last_at")
    query = (
        select(gift_sends.c.sender_id, users.c.handle, coins, last_at)
        .select_from(
            gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id).join(
                users, users.c.id == gift_sends.c.sender_id
            )
        )
        .where(*where, gift_sends.c.reversed.is_(False))
        .group_by(gift_sends.c.sender_id, users.c.handle)
        .order_by(coins.desc(), last_at, gift_sends.c.sender_id)
        .limit(limit)
    )
    return [
        {"rank": n + 1, "user_id": int(sender), "handle": handle, "coins": int(total)}
        for n, (sender, handle, total, _) in enumerate(conn.execute(query).all())
    ]


def top_gifters_of_creator(
    db: Engine, creator_id: int, since_us: int | None, limit: int
) -> list[dict[str, Any]]:
    """A creator's top gifters since ``since_us`` (None: all time); 404 ``creator_not_found``
    for a user who is no creator. One read (blocking)."""
    with db.connect() as conn:
        creator = find_user(conn, creator_id)
        if creator is None or creator.role is not Role.CREATOR:
            raise NotFound(Code.CREATOR_NOT_FOUND, f"no creator {creator_id}")
        return creator_top_gifters(conn, creator_id, since_us, limit)
