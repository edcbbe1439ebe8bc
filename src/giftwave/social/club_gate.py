"""A creator's chat mode and a viewer's club badge, as every node must answer them on each chat
line and join (``social/chat_settings.py`` and ``social/clubs.py`` store them).

Both answers are read from the database and kept ``ttl_s``, like ``live/ban_gate.py``: a busy
chat must not be a query per line. A club changed (named, renamed) or the creator's chat mode
switched (one notice, ``ClubChanged``, drops the creator's whole answer), or a membership changed
(joined, left, removed: ``ClubMemberChanged``), on any node, is announced through the broker;
every node drops its copy at once. A member's level
rises off the gift path (``club_points.py``), so the level a badge shows may be up to ``ttl_s``
behind their points; whether they are a member at all never is, past a notice.
"""

from __future__ import annotations

import asyncio
from typing import Final

from sqlalchemy import Engine

from giftwave.live.events import ClubBadge
from giftwave.realtime.notices import AnyNotice, ClubChanged, ClubMemberChanged
from giftwave.social.chat_settings import ChatSetting, chat_setting, may_chat, refusal
from giftwave.social.clubs import Club, find_club, level_of
from giftwave.ttl_cache import TtlCache

TTL_S: Final = 30.0
MAX_CLUBS: Final = 10_000
MAX_MEMBERSHIPS: Final = 100_000  # (creator, user) pairs: a few MB


class ClubGate:
    def __init__(
        self,
        db: Engine,
        *,
        ttl_s: float = TTL_S,
        max_clubs: int = MAX_CLUBS,
        max_memberships: int = MAX_MEMBERSHIPS,
    ) -> None:
        self._db = db
        # A creator's (club or None, chat setting); a level in a 1-tuple, so "not a member"
        # (None) is kept like any other answer.
        self._clubs: TtlCache[int, tuple[Club | None, ChatSetting]] = TtlCache(
            max_entries=max_clubs, ttl_s=ttl_s
        )
        self._levels: TtlCache[tuple[int, int], tuple[int | None]] = TtlCache(
            max_entries=max_memberships, ttl_s=ttl_s
        )
        # Bumped by a change of a club or a membership (and by a possible loss of notices): a
        # read that started before such a change must not store its (now old) answer after the
        # change dropped the entry. Other parts' notices leave it alone (``notice``).
        self._generation = 0

    async def badge(self, creator_id: int, user_id: int) -> ClubBadge | None:
        """The user's badge in the creator's club, or None (no club, not a member)."""
        (club, _), level = await self._standing(creator_id, user_id)
        return None if club is None or level is None else ClubBadge(name=club.name, level=level)

    async def chat_badge(
        self, creator_id: int, user_id: int, sub_months: int = 0
    ) -> ClubBadge | None:
        """The badge a chat line carries; 403 ``members_only_chat`` (or
        ``subscribers_only_chat``) when the creator's chat mode leaves the user out, who has
        ``sub_months`` of a subscription with access now (the creator always chats in their
        own rooms)."""
        (club, setting), level = await self._standing(creator_id, user_id)
        if user_id != creator_id and not may_chat(setting, club, level, sub_months > 0):
            raise refusal(setting, club)
        return None if club is None or level is None else ClubBadge(name=club.name, level=level)

    async def _standing(
        self, creator_id: int, user_id: int
    ) -> tuple[tuple[Club | None, ChatSetting], int | None]:
        rooms = self._clubs.get(creator_id)
        level = self._levels.get((creator_id, user_id))
        if rooms is not None and level is not None:
            return rooms, level[0]
        generation = self._generation

        def read() -> tuple[tuple[Club | None, ChatSetting], int | None]:
            with self._db.connect() as conn:
                club = find_club(conn, creator_id)
                setting = chat_setting(conn, creator_id)
                return (club, setting), level_of(conn, creator_id, user_id)

        found, found_level = await asyncio.to_thread(read)
        if generation == self._generation:
            self._clubs.put(creator_id, found)
            self._levels.put((creator_id, user_id), (found_level,))
        return found, found_level

    def notice(self, notice: AnyNotice | None) -> None:
        """A broker notice; None: some may have been lost, so nothing kept is trusted. Other
        parts' notices change nothing here, not even the generation (a busy room's level-ups
        would otherwise keep every read from being stored)."""
        if notice is None:
            self._generation += 1
            self._clubs.clear()
            self._levels.clear()
        elif isinstance(notice, ClubChanged):
            self._generation += 1
            self._clubs.drop(notice.creator_id)
        elif isinstance(notice, ClubMemberChanged):
            self._generation += 1
            self._levels.drop((notice.creator_id, notice.user_id))
