"""The fan club parts one node runs, built and started together: the chat gate (cached answers,
dropped by notices), this node's likes and watch time, the follower of committed gifts, and the
per-user limit on club changes (docs/community.md)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from sqlalchemy import Engine

from giftwave.errors import Code
from giftwave.periodic import PeriodicTask, Schedule
from giftwave.ratelimit import Rate, UserLimit
from giftwave.social.club_gate import ClubGate
from giftwave.social.club_points import (
    GIFT_CHUNKS_PER_RUN,
    GIFTS_INTERVAL_S,
    ClubActivity,
    ClubGiftPoints,
)

# A creator naming a club or switching its chat, a viewer joining and leaving: a few a minute.
CHANGES_RATE: Final = Rate(1.0, 20)


class FanClubs:
    def __init__(
        self,
        db: Engine,
        watchers: Callable[[], dict[str, list[int]]],
        *,
        gifts_interval_s: float = GIFTS_INTERVAL_S,
        follow_gifts: bool = True,
    ) -> None:
        self.gate = ClubGate(db)
        self.activity = ClubActivity(db, watchers)
        self.gift_points = ClubGiftPoints(db)
        self.changes = UserLimit(
            "club-change", CHANGES_RATE, code=Code.RATE_LIMITED, detail="too many fan club changes"
        )
        self._gifts = PeriodicTask("club-points", self._follow, Schedule(gifts_interval_s))
        self._follow_gifts = follow_gifts  # False: followed elsewhere (followers.py)

    async def _follow(self) -> None:
        await asyncio.to_thread(self.gift_points.catch_up, GIFT_CHUNKS_PER_RUN)

    def start(self) -> None:
        self.activity.start()
        if self._follow_gifts:
            self._gifts.start()

    async def stop(self) -> None:
        await self._gifts.stop()
        await self.activity.stop()
