"""Who has a room open, on every node: what gifted subscriptions draw their recipients from.

Each node knows only its own sockets (``realtime.Hub.watchers``). Every ``interval_s`` it
writes their logged-in viewers to ``room_viewers`` (one upsert per room and person, the time
seen), and prunes rows long gone. A viewer is present when some node saw them within
``window_s`` (a few intervals: a node's late write does not drop anyone), or when the asking
node has them now (someone who just opened the room counts at once). A node killed leaves its
rows to age out of the window.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from sqlalchemy import Connection, Engine, delete, select

from giftwave.clock import now_us
from giftwave.db.id_lists import in_parts
from giftwave.db.tables import room_viewers
from giftwave.db.upsert import insert_for
from giftwave.periodic import PeriodicTask, Schedule

INTERVAL_S: Final = 10.0
WINDOW_S: Final = 35.0  # three writes and a half: one late or lost write drops nobody
PRUNE_AFTER_S: Final = 3_600.0
PRESENT_MAX: Final = 100_000  # viewers one room's draw reads at most
US_PER_S: Final = 1_000_000

_v = room_viewers.c


def record(conn: Connection, watchers: dict[str, list[int]], at_us: int) -> int:
    """Each (room, viewer) seen now; rows older than ``PRUNE_AFTER_S`` dropped. Rows written."""
    rows = [
        {"stream_id": stream_id, "user_id": user_id, "seen_at_us": at_us}
        for stream_id, user_ids in sorted(watchers.items())
        for user_id in sorted(set(user_ids))
    ]
    for part in in_parts(rows):
        upsert = insert_for(conn, room_viewers)
        conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[_v.stream_id, _v.user_id],
                set_={"seen_at_us": upsert.excluded.seen_at_us},
            ),
            list(part),
        )
    conn.execute(delete(room_viewers).where(_v.seen_at_us < at_us - int(PRUNE_AFTER_S * US_PER_S)))
    return len(rows)


def present(conn: Connection, stream_id: str, since_us: int) -> list[int]:
    """The room's viewers some node saw at or after ``since_us``, by id."""
    found = conn.execute(
        select(_v.user_id)
        .where(_v.stream_id == stream_id, _v.seen_at_us >= since_us)
        .order_by(_v.user_id)
        .limit(PRESENT_MAX)
    ).scalars()
    return [int(user_id) for user_id in found]


class RoomPresence:
    """This node's viewers written for every node, and the question "who is here now?"."""

    def __init__(
        self,
        db: Engine,
        watchers: Callable[[], dict[str, list[int]]],
        *,
        interval_s: float = INTERVAL_S,
        window_s: float = WINDOW_S,
    ) -> None:
        assert 0 < interval_s < window_s
        self._db = db
        self._watchers = watchers
        self._window_us = int(window_s * US_PER_S)
        # The database away fails a write: the next one (backing off) catches up.
        self._loop = PeriodicTask("room-presence", self._write_round, Schedule(interval_s))

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def _write_round(self) -> None:
        await self.write()  # its count is no due time: the loop keeps its interval

    async def write(self) -> int:
        watchers = self._watchers()
        if not watchers:
            return 0
        return await asyncio.to_thread(self._write, watchers, now_us())

    def _write(self, watchers: dict[str, list[int]], at_us: int) -> int:
        with self._db.begin() as conn:
            return record(conn, watchers, at_us)

    def viewers(self, conn: Connection, stream_id: str) -> list[int]:
        """Present in the room now: seen by any node within the window, or here now."""
        here = self._watchers().get(stream_id, [])
        seen = present(conn, stream_id, now_us() - self._window_us)
        return sorted(set(seen).union(here))
