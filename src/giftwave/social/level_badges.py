"""The level badge beside a handle in a room, per node: never a query per chat line.

    get(user)        the cached level, or None (unknown: asked for, read with the next batch)
    warm(users)      read the unknown ones now, in one query (a socket opening: its user)
    load_wanted()    the ones asked for, in one query (the levels loop, about once a second)
    notice(...)      a level-up or a hide on any node (the broker's ``LevelChanged``): the new
                     badge put at once, no query; None (notices may be lost): forget all

A badge is the level on the person's peak coins, 0 when they have none or hide it (0 is not
shown). Entries last ``TTL_S`` and at most ``MAX_ENTRIES`` are kept: a notice that never came
is right again within the TTL.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Final

from sqlalchemy import Engine, select

from giftwave.db.id_lists import in_parts
from giftwave.db.tables import gifter_levels
from giftwave.realtime.notices import AnyNotice, LevelChanged
from giftwave.social.levels import Curve
from giftwave.ttl_cache import TtlCache

TTL_S: Final = 600.0
MAX_ENTRIES: Final = 200_000  # people: a few tens of MB at most
WANTED_MAX: Final = 10_000  # asked for between two loads; past it, later askers wait a round
log = logging.getLogger(__name__)


class LevelBadges:
    def __init__(
        self, db: Engine, curve: Curve, *, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES
    ) -> None:
        self._db = db
        self._curve = curve
        self._badges: TtlCache[int, int] = TtlCache(max_entries=max_entries, ttl_s=ttl_s)
        self._wanted: set[int] = set()
        # Bumped by every notice: a read that started before a change must not store its
        # (now old) answer after the change.
        self._generation = 0

    def get(self, user_id: int) -> int | None:
        """The badge to show (None: none, or not known yet: it is read with the next batch)."""
        badge = self._badges.get(user_id)
        if badge is None:
            if len(self._wanted) < WANTED_MAX:
                self._wanted.add(user_id)
            return None
        return badge or None

    async def warm(self, user_ids: Iterable[int]) -> None:
        """The badges of ``user_ids`` not known here, read now in one query. A badge is not
        worth refusing a socket for: when the read fails they are left to the next batch."""
        missing = sorted({u for u in user_ids if self._badges.get(u) is None})
        if not missing:
            return
        try:
            await self._load(missing)
        except Exception as exc:  # the database away: the levels loop logs and backs off
            log.debug("level badges not read now (%s): left to the next batch", exc)
            for user_id in missing[: max(0, WANTED_MAX - len(self._wanted))]:
                self._wanted.add(user_id)

    async def load_wanted(self) -> None:
        wanted, self._wanted = sorted(self._wanted), set()
        if wanted:
            await self._load(wanted)

    async def _load(self, user_ids: list[int]) -> None:
        generation = self._generation
        found = await asyncio.to_thread(self._read, user_ids)
        if generation != self._generation:
            return  # a notice came meanwhile: read again when asked
        for user_id in user_ids:
            self._badges.put(user_id, found.get(user_id, 0))

    def _read(self, user_ids: list[int]) -> dict[int, int]:
        c = gifter_levels.c
        out: dict[int, int] = {}
        with self._db.connect() as conn:
            for part in in_parts(user_ids):
                for user_id, peak, hidden in conn.execute(
                    select(c.user_id, c.peak_coins, c.hidden).where(c.user_id.in_(part))
                ):
                    out[int(user_id)] = 0 if hidden else self._curve.level(int(peak))
        return out

    def notice(self, notice: AnyNotice | None) -> None:
        """A broker notice; None: some may have been lost, so nothing kept is trusted."""
        if notice is None:
            self._generation += 1
            self._badges.clear()
        elif isinstance(notice, LevelChanged):
            self._generation += 1
            self._badges.put(notice.user_id, max(0, notice.level))
