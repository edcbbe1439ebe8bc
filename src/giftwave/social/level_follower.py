"""Gifter levels from the ledger, off the gift path, each level reached exactly once.

    transfers (position < seq ≤ the chunk's head, fixed first): COIN gift legs ⋈ gift_sends,
        reversals ⋈ the gift
        ─► per gifter, in seq order: coins ± the gift, the peak, the level on the peak
        ─► gifter_levels, gifter_creators, new level_ups rows, the observers' rows (webhooks)
            and the new position, in ONE transaction
        ─► after the commit: the level-ups to announce (the room, every node's badges)

The position is a ``db/watermarks.py`` one, like the analytics rollups': the first statement
of the write locks its row, so two nodes never count a gift twice or announce a level twice
(``level_ups``' key would refuse a second row anyway). A level-up is announced by the run that
committed it; one that crashed between its commit and its announcement leaves the row and the
webhook (written in the transaction), and the room misses that one "reached level N" line.

A reversed gift lowers the exact coins but never the level (it stands on ``peak_coins``,
social/levels.py): real platforms keep a level once reached. Gifts committed before the
levels existed (migration 0020's ``gifter_levels_quiet``) count, but announce nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, or_, select
from sqlalchemy.orm import aliased

from giftwave.clock import now_us
from giftwave.db import watermarks
from giftwave.db.id_lists import in_parts
from giftwave.db.tables import (
    gift_sends,
    gifter_creators,
    gifter_levels,
    level_ups,
    transfers,
    users,
)
from giftwave.db.upsert import insert_new_rows, upsert_rows
from giftwave.economy.gifting import send_id_of
from giftwave.social.levels import Curve

WATERMARK: Final = "gifter_levels"
QUIET_WATERMARK: Final = "gifter_levels_quiet"
CHUNK_MAX_TRANSFERS: Final = 10_000
REVERSAL_SUFFIX: Final = ":rev:c"  # an operator's reversal of a gift's coins (economy/reversals)


@dataclass(frozen=True, slots=True)
class LevelUp:
    """A gifter reached ``level`` with the gift ``send_id`` in ``stream_id``."""

    user_id: int
    handle: str
    level: int
    stream_id: str
    creator_id: int
    send_id: str
    at_us: int  # when the ledger committed the gift
    hidden: bool  # the gifter hides their level: nobody is told


# Called in the transaction that records the level-ups (the webhooks' outbox rows): they exist
# exactly when the level-ups do. Only level-ups of gifters who show their level.
LevelUpObserver = Callable[[Connection, Sequence[LevelUp]], object]


class LevelFollower(watermarks.LedgerFollower):
    """Brings gifter levels up to the ledger, one bounded chunk per transaction. Runs of one
    instance take turns (it holds the chunk's level-ups until the commit); instances on any
    number of nodes or engines may run at once."""

    def __init__(
        self,
        db: Engine,
        curve: Curve,
        *,
        observers: Sequence[LevelUpObserver] = (),
        chunk_max_transfers: int = CHUNK_MAX_TRANSFERS,
    ) -> None:
        super().__init__(db, WATERMARK, chunk_max_transfers)
        self._curve = curve
        self._observers = tuple(observers)
        self._quiet_until: int | None = None  # read once
        self._pending: list[LevelUp] = []  # the chunk's, until its commit
        self._committed: list[LevelUp] = []  # committed, not yet taken
        # A second run of this instance on another thread would reset the first's pending
        # level-ups between its apply and its commit, and they would never be taken.
        self._turn = threading.Lock()

    def run_once(self) -> int:
        with self._turn:
            self._pending = []
            passed = super().run_once()
            self._committed.extend(self._pending)  # reached only after the commit
            self._pending = []
            return passed

    def take_level_ups(self) -> list[LevelUp]:
        """The level-ups this follower committed since the last call, oldest first (hidden
        ones left out): what this node announces."""
        with self._turn:
            taken, self._committed = self._committed, []
        return taken

    def read(self, conn: Connection, last: int, head: int) -> _Chunk | None:
        in_chunk = and_(transfers.c.seq > last, transfers.c.seq <= head)
        g = aliased(gift_sends, name="g")
        r = aliased(gift_sends, name="r")
        t = transfers.c
        rows = conn.execute(
            select(
                t.seq,
                t.created_at_us,
                g.c.sender_id,
                g.c.creator_id,
                g.c.stream_id,
                g.c.coins,
                g.c.idempotency_key,
                r.c.sender_id.label("r_sender_id"),
                r.c.creator_id.label("r_creator_id"),
                r.c.coins.label("r_coins"),
            )
            .select_from(
                transfers.outerjoin(g, g.c.transfer_id == t.id).outerjoin(
                    r, and_(t.reverses_id.is_not(None), r.c.transfer_id == t.reverses_id)
                )
            )
            .where(
                in_chunk,
                or_(
                    and_(t.code == "gift", t.asset == "COIN", g.c.sender_id.is_not(None)),
                    and_(
                        t.code == "refund",
                        t.id.like(f"%{REVERSAL_SUFFIX}"),
                        r.c.sender_id.is_not(None),
                    ),
                ),
            )
            .order_by(t.seq)
        ).all()
        if not rows:
            return None
        # Everything but the writes happens here, before the write transaction (the base
        # class's ``read``: why). The gifters' totals read now are the ones the write builds
        # on: only this follower writes them, under the position that ``claim`` then finds
        # unmoved, or the chunk is left to the run that moved it. Whether a gifter hides their
        # level is read now too: a change in the same instant counts from the next chunk.
        if self._quiet_until is None:
            self._quiet_until = watermarks.position_in(conn, QUIET_WATERMARK) or 0
        moves = [_move(row) for row in rows]
        state = _stored(conn, sorted({m.user_id for m in moves}))
        given, reached = tally(self._curve, state, moves, self._quiet_until)
        ups = [(user, level, rows[i]) for user, level, i in reached]
        return _Chunk(state, given, ups, _handles(conn, sorted({user for user, _, _ in ups})))

    def apply(self, conn: Connection, rows: _Chunk | None) -> None:
        """``rows``: ``read``'s chunk, None when it held no gift."""
        if rows is None:
            return
        _write_totals(conn, rows.state, rows.given)
        ups = _record(conn, rows.reached, rows.state, rows.handles)
        shown = [up for up in ups if not up.hidden]
        if shown:
            for observer in self._observers:
                observer(conn, shown)
        self._pending.extend(shown)


@dataclass(frozen=True, slots=True)
class _Chunk:
    """A chunk as ``read`` leaves it for the write: the gifters' totals after it, the coins
    each gave each creator in it, the level-ups it reached (user, level, the gift's row) and
    their handles."""

    state: dict[int, list[Any]]
    given: dict[tuple[int, int], int]
    reached: list[tuple[int, int, Any]]
    handles: dict[int, str]


@dataclass(frozen=True, slots=True)
class Move:
    """A committed gift's coins (or, negative, its reversal's) from a gifter to a creator."""

    seq: int
    user_id: int
    creator_id: int
    coins: int


def _move(row: Any) -> Move:
    if row.sender_id is not None:
        return Move(int(row.seq), int(row.sender_id), int(row.creator_id), int(row.coins))
    return Move(int(row.seq), int(row.r_sender_id), int(row.r_creator_id), -int(row.r_coins))


def tally(
    curve: Curve, held: dict[int, list[Any]], moves: Sequence[Move], quiet_until: int
) -> tuple[dict[tuple[int, int], int], list[tuple[int, int, int]]]:
    """Every level rule, pure: ``moves`` in seq order added to ``held`` (user → [coins, peak,
    hidden], changed in place); returns the coins per (user, creator) to add, and the
    level-ups as (user, new level, index of the move that reached it). A level stands on the
    peak, so it never goes down; a move at or below ``quiet_until`` announces nothing."""
    given: dict[tuple[int, int], int] = {}
    reached: list[tuple[int, int, int]] = []
    for i, m in enumerate(moves):
        key = (m.user_id, m.creator_id)
        given[key] = given.get(key, 0) + m.coins
        state = held.setdefault(m.user_id, [0, 0, False])
        state[0] += m.coins
        if state[0] <= state[1]:
            continue  # at or below the peak: the level stands
        before = curve.level(state[1])
        state[1] = state[0]
        after = curve.level(state[1])
        if after > before and m.seq > quiet_until:
            reached.append((m.user_id, after, i))
    return given, reached


def _stored(conn: Connection, senders: list[int]) -> dict[int, list[Any]]:
    """Each sender's [coins, peak_coins, hidden] as earlier chunks left them."""
    c = gifter_levels.c
    out: dict[int, list[Any]] = {}
    for part in in_parts(senders):
        for user, coins, peak, hidden in conn.execute(
            select(c.user_id, c.coins, c.peak_coins, c.hidden).where(c.user_id.in_(part))
        ):
            out[int(user)] = [int(coins), int(peak), bool(hidden)]
    return out


def _write_totals(
    conn: Connection, state: dict[int, list[Any]], given: dict[tuple[int, int], int]
) -> None:
    at = now_us()
    upsert_rows(
        conn,
        gifter_levels,
        [
            {"user_id": u, "coins": v[0], "peak_coins": v[1], "hidden": False, "updated_at_us": at}
            for u, v in sorted(state.items())
        ],
        "(user_id) DO UPDATE SET coins = excluded.coins, peak_coins = excluded.peak_coins,"
        " updated_at_us = excluded.updated_at_us",
    )
    upsert_rows(
        conn,
        gifter_creators,
        [{"user_id": u, "creator_id": c, "coins": n} for (u, c), n in sorted(given.items())],
        "(user_id, creator_id) DO UPDATE SET coins = gifter_creators.coins + excluded.coins",
    )


def _handles(conn: Connection, ids: list[int]) -> dict[int, str]:
    handles: dict[int, str] = {}
    for part in in_parts(ids):
        handles.update(
            (int(i), str(h))
            for i, h in conn.execute(select(users.c.id, users.c.handle).where(users.c.id.in_(part)))
        )
    return handles


def _record(
    conn: Connection,
    reached: list[tuple[int, int, Any]],
    state: dict[int, list[Any]],
    handles: dict[int, str],
) -> list[LevelUp]:
    """The level-ups as rows of ``level_ups``; those that were new, oldest first."""
    if not reached:
        return []
    rows = [
        {
            "user_id": user,
            "level": level,
            "stream_id": row.stream_id,
            "creator_id": int(row.creator_id),
            "send_id": send_id_of(user, row.idempotency_key),
            "seq": int(row.seq),
            "at_us": int(row.created_at_us),
        }
        for user, level, row in reached
    ]
    inserted = insert_new_rows(conn, level_ups, rows, (level_ups.c.user_id, level_ups.c.level))
    new = {(int(row[0]), int(row[1])) for row in inserted}
    return [
        LevelUp(
            user_id=r["user_id"],
            handle=handles.get(r["user_id"], ""),
            level=r["level"],
            stream_id=r["stream_id"],
            creator_id=r["creator_id"],
            send_id=r["send_id"],
            at_us=r["at_us"],
            hidden=bool(state[r["user_id"]][2]),
        )
        for r in rows
        if (r["user_id"], r["level"]) in new
    ]
