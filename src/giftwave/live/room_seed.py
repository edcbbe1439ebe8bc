"""A live room rebuilt from the database: what a restarted process shows, and what a node shows
after its broker may have lost events (Redis restarted, or was out of reach).

Committed gifts only (the coins leg is in ``transfers``), reversed ones left out of the
totals, like goals' and battles' committed coins; the reversed ones are named, so that the room
does not apply their reversal again when its event comes (the row is marked reversed in the
reversal's ledger transaction: a snapshot sees the reversal exactly when the ledger has it).

Everything is read in one snapshot, so that the sends a room takes as counted are exactly the
ones in its totals; a gift committed (or reversed) after the snapshot reaches the room as an
event and is counted (or taken out) then.

Bounded: the top gifters are every sender of the stream (the live leaderboard holds them all
too); combos and the recent gifts are rebuilt from the latest ``RECENT_SENDS`` sends (a combo
that began before them shows only its part within them); the sends taken as counted are the
latest ``SEEN_MAX`` (older ones are below the room's floor, see ``live.seen``), and so are the
reversed ones named.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Final

from sqlalchemy import Connection, Engine, func, select

from giftwave import clock
from giftwave.db.tables import gift_sends, transfers, users
from giftwave.live.battles import Battle, BattleStatus, committed_scores, latest_battle_of
from giftwave.live.events import PaidMessage
from giftwave.live.goals import committed_progress, current_goal
from giftwave.live.room import PAID_PINNED_MAX, RoomSeed, SeedGift, SeedGifter
from giftwave.live.seen import SEEN_MAX
from giftwave.live.thanks import for_room

RECENT_SENDS: Final = 10_000

_COMMITTED: Final = gift_sends.join(transfers, transfers.c.id == gift_sends.c.transfer_id)


@contextmanager
def consistent_read(db: Engine) -> Iterator[Connection]:
    """A connection whose reads all see one snapshot of the database."""
    with db.connect() as conn:
        if conn.dialect.name == "postgresql":
            conn = conn.execution_options(isolation_level="REPEATABLE READ")
        else:
            # SQLite (WAL): a deferred transaction reads one snapshot from its first read on.
            conn.exec_driver_sql("BEGIN")
        yield conn


def load_seed(
    conn: Connection, stream_id: str, combo_gifts: frozenset[str], now_us: int | None = None
) -> RoomSeed:
    """The room of ``stream_id`` as the database has it at ``now_us`` (default: now);
    ``combo_gifts`` are the gifts that combo."""
    of_stream = gift_sends.c.stream_id == stream_id
    seen, seen_floor_us = _counted(conn, of_stream)
    gifters = _gifters(conn, stream_id)
    goal = current_goal(conn, stream_id)
    battle = latest_battle_of(conn, stream_id)
    battle_scores, seen_points, seen_points_floor_us = _battle(conn, battle)
    scoring = _scoring(battle)
    return RoomSeed(
        goal=goal,
        goal_progress=0 if goal is None else committed_progress(conn, goal),
        battle=battle,
        battle_scores=battle_scores,
        coins=sum(coins for _, coins, _ in gifters),
        diamonds=sum(diamonds for _, _, diamonds in gifters),
        gifters=tuple(gifter for gifter, _, _ in gifters),
        recent=_recent(conn, stream_id, combo_gifts),
        seen=seen,
        seen_floor_us=seen_floor_us,
        seen_points=seen_points,
        seen_points_floor_us=seen_points_floor_us,
        reversed=_reversed(conn, of_stream),
        reversed_points=() if scoring is None else _reversed(conn, *scoring),
        paid_messages=_pinned(conn, stream_id, clock.now_us() if now_us is None else now_us),
        thanks=for_room(conn, stream_id),
    )


def _send_id(transfer_id: str) -> str:
    return transfer_id.removesuffix(":c")  # a gift's coins leg is named after its send


def _counted(conn: Connection, *where: Any) -> tuple[tuple[tuple[str, int], ...], int]:
    """The latest committed sends (reversed or not: either way never to count again), oldest
    first, and the floor below which everything is taken as counted."""
    rows = conn.execute(
        select(gift_sends.c.transfer_id, gift_sends.c.created_at_us)
        .select_from(_COMMITTED)
        .where(*where)
        .order_by(gift_sends.c.created_at_us.desc(), gift_sends.c.id.desc())
        .limit(SEEN_MAX)
    ).all()
    floor_us = int(rows[-1].created_at_us) if len(rows) == SEEN_MAX else -1
    return tuple((_send_id(r.transfer_id), int(r.created_at_us)) for r in reversed(rows)), floor_us


def _reversed(conn: Connection, *where: Any) -> tuple[tuple[str, int], ...]:
    """The latest reversed sends among ``where``, oldest first."""
    rows = conn.execute(
        select(gift_sends.c.transfer_id, gift_sends.c.created_at_us)
        .select_from(_COMMITTED)
        .where(*where, gift_sends.c.reversed.is_(True))
        .order_by(gift_sends.c.created_at_us.desc(), gift_sends.c.id.desc())
        .limit(SEEN_MAX)
    ).all()
    return tuple((_send_id(r.transfer_id), int(r.created_at_us)) for r in reversed(rows))


def _gifters(conn: Connection, stream_id: str) -> list[tuple[SeedGifter, int, int]]:
    """Every sender's (gifter, coins, diamonds), earliest latest gift first."""
    rows = conn.execute(
        select(
            gift_sends.c.sender_id,
            users.c.handle,
            func.sum(gift_sends.c.coins).label("coins"),
            func.sum(gift_sends.c.diamonds).label("diamonds"),
            func.max(gift_sends.c.created_at_us).label("last_at_us"),
        )
        .select_from(_COMMITTED.join(users, users.c.id == gift_sends.c.sender_id))
        .where(gift_sends.c.stream_id == stream_id, gift_sends.c.reversed.is_(False))
        .group_by(gift_sends.c.sender_id, users.c.handle)
    ).all()
    gifters = [
        (
            SeedGifter(int(r.sender_id), r.handle, int(r.coins), int(r.last_at_us)),
            int(r.coins),
            int(r.diamonds),
        )
        for r in rows
    ]
    gifters.sort(key=lambda g: (g[0].last_at_us, g[0].user_id))
    return gifters


def _recent(conn: Connection, stream_id: str, combo_gifts: frozenset[str]) -> tuple[SeedGift, ...]:
    rows = conn.execute(
        select(
            gift_sends.c.transfer_id,
            gift_sends.c.sender_id,
            users.c.handle,
            gift_sends.c.gift_id,
            gift_sends.c.count,
            gift_sends.c.coins,
            gift_sends.c.created_at_us,
        )
        .select_from(_COMMITTED.join(users, users.c.id == gift_sends.c.sender_id))
        .where(gift_sends.c.stream_id == stream_id, gift_sends.c.reversed.is_(False))
        .order_by(gift_sends.c.created_at_us.desc(), gift_sends.c.id.desc())
        .limit(RECENT_SENDS)
    ).all()
    return tuple(
        SeedGift(
            send_id=_send_id(r.transfer_id),
            sender_id=int(r.sender_id),
            sender_handle=r.handle,
            gift_id=r.gift_id,
            count=int(r.count),
            coins=int(r.coins),
            comboable=r.gift_id in combo_gifts,
            at_us=int(r.created_at_us),
        )
        for r in reversed(rows)
    )


def _pinned(conn: Connection, stream_id: str, now_us: int) -> tuple[PaidMessage, ...]:
    """The stream's paid messages still pinned at ``now_us``, not hidden, of gifts not
    reversed, oldest first (at most the room's PAID_PINNED_MAX newest; ix_gift_sends_pinned)."""
    m = gift_sends.c
    rows = conn.execute(
        select(
            m.transfer_id,
            m.sender_id,
            users.c.handle,
            m.message,
            m.gift_id,
            m.coins,
            m.message_tier,
            m.message_colour,
            m.message_pinned_until_us,
            m.created_at_us,
        )
        .select_from(_COMMITTED.join(users, users.c.id == m.sender_id))
        .where(
            m.stream_id == stream_id,
            m.message.is_not(None),
            m.message_pinned_until_us > now_us,
            m.message_hidden_by.is_(None),
            m.reversed.is_(False),
        )
        .order_by(m.created_at_us.desc(), m.id.desc())
        .limit(PAID_PINNED_MAX)
    ).all()
    return tuple(
        PaidMessage(
            send_id=_send_id(r.transfer_id),
            sender_id=int(r.sender_id),
            sender=r.handle,
            text=r.message,
            gift_id=r.gift_id,
            coins=int(r.coins),
            tier=int(r.message_tier),
            colour=r.message_colour,
            pinned_until_us=int(r.message_pinned_until_us),
            at_us=int(r.created_at_us),
        )
        for r in reversed(rows)
    )


def _battle(
    conn: Connection, battle: Battle | None
) -> tuple[tuple[int, int], tuple[tuple[str, int], ...], int]:
    """The battle's scores, and the sends that already scored in it (while it is on)."""
    if battle is None:
        return (0, 0), (), -1
    if battle.status is BattleStatus.ENDED:
        return (battle.score_a, battle.score_b), (), -1
    if battle.status is not BattleStatus.ACTIVE:
        return (0, 0), (), -1
    scoring = _scoring(battle)
    assert scoring is not None
    scored, floor_us = _counted(conn, *scoring)
    return committed_scores(conn, battle), scored, floor_us


def _scoring(battle: Battle | None) -> tuple[Any, ...] | None:
    """Which sends score in an active battle (None: no battle is on)."""
    if battle is None or battle.status is not BattleStatus.ACTIVE:
        return None
    assert battle.started_at_us is not None
    assert battle.ends_at_us is not None
    return (
        gift_sends.c.creator_id.in_((battle.a.creator_id, battle.b.creator_id)),
        gift_sends.c.created_at_us >= battle.started_at_us,
        gift_sends.c.created_at_us < battle.ends_at_us,
        gift_sends.c.stream_id.in_(battle.stream_ids),
    )
