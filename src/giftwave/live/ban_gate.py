"""Whether a user is banned from a creator's rooms, as every node must answer it on each chat
line, like and gift (``live/moderation.py`` stores the bans).

The answer is read from the database and kept ``ttl_s``: a gift rain must not be a query per
gift. A ban or an unban, on any node, is announced through the broker (``BanChanged``); every
node drops its copy of that answer at once, so the next command reads the new one. When the
broker says notices may have been lost (Redis restarted or was out of reach), every answer is
dropped. Should a notice never arrive, an answer is at most ``ttl_s`` old.
"""

from __future__ import annotations

from typing import Final

from sqlalchemy import Engine

from giftwave.db.batch_read import BatchReader
from giftwave.db.engine import reads
from giftwave.errors import Code, Forbidden
from giftwave.live.moderation import banned_pairs
from giftwave.realtime.notices import AnyNotice, BanChanged
from giftwave.ttl_cache import TtlCache

TTL_S: Final = 30.0
MAX_ENTRIES: Final = 100_000  # (creator, user) pairs: a few MB


class BanGate:
    def __init__(self, db: Engine, *, ttl_s: float = TTL_S, max_entries: int = MAX_ENTRIES) -> None:
        self._reader = reads(db)  # autocommit reads on PostgreSQL (db/engine.py)
        self._answers: TtlCache[tuple[int, int], bool] = TtlCache(
            max_entries=max_entries, ttl_s=ttl_s
        )
        # The answers not kept, read together: every pair asked for during one turn of the
        # event loop in one query, however many gifts wait for it (a room of new viewers, each
        # with several gifts in flight, made one read per gift on the shared worker threads).
        self._reads: BatchReader[tuple[int, int], bool] = BatchReader(self._read)
        # Bumped by every change of a ban (and by a possible loss of notices): a read that
        # started before a change must not store its (now old) answer after the change dropped
        # the entry. Only those: other parts' notices (a level-up, a club's points) arrive many
        # times a second in a busy room, and bumping on them kept any answer from being stored.
        self._generation = 0

    async def banned(self, creator_id: int, user_id: int) -> bool:
        key = (creator_id, user_id)
        answer = self._answers.get(key)
        if answer is not None:
            return answer
        generation = self._generation
        answer = await self._reads.get(key)
        if generation == self._generation:
            self._answers.put(key, answer)
        return answer

    def _read(self, pairs: list[tuple[int, int]]) -> dict[tuple[int, int], bool]:
        with self._reader.connect() as conn:
            banned = banned_pairs(conn, pairs)
        return {pair: pair in banned for pair in pairs}

    async def check(self, user_id: int, creator_id: int) -> None:
        """Refuse a banned user's chat, like or gift in the creator's rooms (403 ``banned``)."""
        if await self.banned(creator_id, user_id):
            raise Forbidden(Code.BANNED, "the creator banned you from their rooms")

    def notice(self, notice: AnyNotice | None) -> None:
        """A broker notice; None: some may have been lost, so nothing kept is trusted."""
        if notice is None:
            self._generation += 1
            self._answers.clear()
        elif isinstance(notice, BanChanged):
            self._generation += 1
            self._answers.drop((notice.creator_id, notice.user_id))
