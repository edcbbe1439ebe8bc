"""Fan club points, added off the gift path (docs/community.md, "Points").

Gifts: ``ClubGiftPoints`` follows the ledger's committed transfers past its watermark (as the
analytics rollups do, ``db/watermarks.py``): each gift of a member to the creator of their club,
committed at or after they joined, adds its coins; a joining's entry gift that committed while
its request died makes the waiting row a member here (both or neither, in the end). Exactly
once, whatever the number of nodes or runs.

Likes and watch time: ``ClubActivity`` on each node. Likes are counted where the like command
arrived (once each); watch time is sampled from the viewers this node's rooms have open, and a
member seen by two nodes in one interval is credited once (``watched_at_us``). Both are written
every ``interval_s`` in one transaction; a node that dies loses at most one interval of them.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, Final

from sqlalchemy import Connection, Engine, and_, bindparam, func, select, update

from giftwave.clock import now_us
from giftwave.db.tables import fan_club_members, fan_clubs, gift_sends, streams, transfers
from giftwave.db.watermarks import LedgerFollower
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.social.clubs import ENTRY_KEY_PREFIX, activate, points_sql

WATERMARK: Final = "club_points"
CHUNK_MAX_TRANSFERS: Final = 5_000
GIFTS_INTERVAL_S: Final = 2.0
GIFT_CHUNKS_PER_RUN: Final = 20  # up to 100,000 transfers a run while behind
ACTIVITY_INTERVAL_S: Final = 30.0
MAX_PENDING_LIKERS: Final = 100_000  # (stream, user) pairs held between writes: a few MB

_m = fan_club_members.c


def _add(**deltas: Any) -> dict[str, Any]:
    """SET values that add to a member's totals and recompute their points from the sums."""
    sums = {name: getattr(_m, name) + delta for name, delta in deltas.items()}
    full = {name: sums.get(name, getattr(_m, name)) for name in ("gift_coins", "likes", "watch_s")}
    return {**sums, "points": points_sql(full["gift_coins"], full["likes"], full["watch_s"])}


class ClubGiftPoints(LedgerFollower):
    def __init__(self, db: Engine, chunk_max_transfers: int = CHUNK_MAX_TRANSFERS) -> None:
        super().__init__(db, WATERMARK, chunk_max_transfers)

    def read(self, conn: Connection, last: int, head: int) -> Sequence[Any]:
        window = and_(transfers.c.seq > last, transfers.c.seq <= head)
        g = gift_sends.c
        return conn.execute(
            select(
                g.creator_id,
                g.sender_id,
                g.coins,
                g.gift_id,
                g.idempotency_key,
                g.transfer_id,
                g.created_at_us,
            )
            # Only gifts to creators with a club: where nobody has one, a chunk is no rows. A
            # club is committed before anyone joins it, so before any gift that counts.
            .select_from(
                transfers.join(gift_sends, g.transfer_id == transfers.c.id).join(
                    fan_clubs, fan_clubs.c.creator_id == g.creator_id
                )
            )
            .where(window)
            .order_by(transfers.c.seq)
        ).all()

    def apply(self, conn: Connection, rows: Sequence[Any]) -> None:
        if not rows:
            return
        _complete_entries(conn, rows)
        senders = sorted({int(r.sender_id) for r in rows})
        joined = {
            (int(m.creator_id), int(m.user_id)): int(m.joined_at_us)
            for m in conn.execute(
                select(_m.creator_id, _m.user_id, _m.joined_at_us).where(
                    _m.user_id.in_(senders), _m.active.is_(True)
                )
            )
        }
        coins: dict[tuple[int, int], int] = defaultdict(int)
        seen: dict[tuple[int, int], int] = {}
        for r in rows:
            pair = (int(r.creator_id), int(r.sender_id))
            since = joined.get(pair)
            if since is not None and int(r.created_at_us) >= since:
                coins[pair] += int(r.coins)
                seen[pair] = max(seen.get(pair, 0), int(r.created_at_us))
        # One fixed order: two writers never wait on each other crosswise.
        for creator_id, user_id in sorted(coins):
            conn.execute(
                update(fan_club_members)
                .where(_m.creator_id == creator_id, _m.user_id == user_id)
                .values(
                    **_add(gift_coins=coins[(creator_id, user_id)]),
                    last_seen_at_us=func.max(_m.last_seen_at_us, seen[(creator_id, user_id)])
                    if conn.dialect.name == "sqlite"
                    else func.greatest(_m.last_seen_at_us, seen[(creator_id, user_id)]),
                )
            )


def _complete_entries(conn: Connection, rows: Sequence[Any]) -> None:
    """Joinings whose entry gift committed: the waiting rows become members."""
    entries = [r for r in rows if str(r.idempotency_key).startswith(ENTRY_KEY_PREFIX)]
    if not entries:
        return
    gifts = dict(
        conn.execute(
            select(fan_clubs.c.creator_id, fan_clubs.c.entry_gift_id).where(
                fan_clubs.c.creator_id.in_({int(r.creator_id) for r in entries})
            )
        ).all()
    )
    for r in entries:
        if gifts.get(int(r.creator_id)) == r.gift_id:
            send_id = str(r.transfer_id).removesuffix(":c")
            activate(conn, int(r.creator_id), int(r.sender_id), send_id)


class ClubActivity:
    """This node's likes and watch time, written to members' points every ``interval_s``."""

    def __init__(
        self,
        db: Engine,
        watchers: Callable[[], dict[str, list[int]]],
        *,
        interval_s: float = ACTIVITY_INTERVAL_S,
        max_pending: int = MAX_PENDING_LIKERS,
    ) -> None:
        assert interval_s > 0
        self._db = db
        self._watchers = watchers
        self._interval_s = interval_s
        self._max_pending = max_pending
        self._likes: dict[tuple[str, int], int] = {}
        self._last_write = time.monotonic()
        self._loop = PeriodicTask("club-activity", self.write, Schedule(interval_s))

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()
        await self.write()  # what was counted since the last write

    def like(self, stream_id: str, user_id: int, count: int) -> None:
        """A like on this node (a dict entry: the like path stays as fast)."""
        key = (stream_id, user_id)
        if key in self._likes or len(self._likes) < self._max_pending:
            self._likes[key] = self._likes.get(key, 0) + count

    async def write(self) -> None:
        likes, self._likes = self._likes, {}
        now = time.monotonic()
        # A node that slept (a pause, a backoff) credits at most two intervals of watching.
        watched_s = min(round(now - self._last_write), round(2 * self._interval_s))
        self._last_write = now
        watchers = self._watchers()
        if likes or (watchers and watched_s > 0):
            await asyncio.to_thread(_write, self._db, likes, watchers, watched_s, now_us())


def _write(
    db: Engine,
    likes: dict[tuple[str, int], int],
    watchers: dict[str, list[int]],
    watched_s: int,
    at_us: int,
) -> None:
    stream_ids = {s for s, _ in likes} | set(watchers)
    with db.begin() as conn:
        creators = dict(
            conn.execute(
                select(streams.c.id, streams.c.creator_id).where(streams.c.id.in_(stream_ids))
            ).all()
        )
        liked: dict[tuple[int, int], int] = defaultdict(int)
        for (stream_id, user_id), n in likes.items():
            if stream_id in creators:
                liked[(int(creators[stream_id]), user_id)] += n
        watching = sorted(
            {(int(creators[s]), u) for s, users in watchers.items() if s in creators for u in users}
        )
        member = and_(
            _m.creator_id == bindparam("c"), _m.user_id == bindparam("u"), _m.active.is_(True)
        )
        if liked:
            conn.execute(
                update(fan_club_members)
                .where(member)
                .values(**_add(likes=bindparam("n")), last_seen_at_us=at_us),
                [{"c": c, "u": u, "n": n} for (c, u), n in sorted(liked.items())],
            )
        if watching and watched_s > 0:
            # Another node credited this member within half an interval: this one does not.
            fresh = _m.watched_at_us <= at_us - watched_s * 500_000
            conn.execute(
                update(fan_club_members)
                .where(member, fresh)
                .values(**_add(watch_s=watched_s), watched_at_us=at_us, last_seen_at_us=at_us),
                [{"c": c, "u": u} for c, u in watching],
            )
