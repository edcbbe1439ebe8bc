"""Gentle reminders in the room (docs/economy.md, "Responsible spending"): after a stretch of
continuous gifting, and when the month's spend passes the viewer's own average month, the
viewer's next gift answer carries a ``spending_reminder`` for them alone (docs/protocol.md).

Kept per node, in memory, bounded: a reminder is a nudge, not money, so a node restart that
forgets a streak is acceptable, and the gift path reads no database for it (the month's figure
is read off the gift path, at most every ``MONTH_REFRESH_S`` per viewer, and grown by the
gifts this node sees meanwhile).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

US_PER_MIN: Final = 60_000_000
VIEWERS_MAX: Final = 100_000
MONTH_REFRESH_S: Final = 600.0


@dataclass(frozen=True, slots=True)
class Reminder:
    reason: str  # gifting_time | above_average
    minutes: int = 0  # of continuous gifting
    month_coins: int = 0
    average_month_coins: int = 0

    def as_dict(self) -> dict[str, object]:
        return {
            "type": "spending_reminder",
            "reason": self.reason,
            "minutes": self.minutes,
            "month_coins": self.month_coins,
            "average_month_coins": self.average_month_coins,
        }


@dataclass(slots=True)
class _Viewer:
    streak_from_us: int
    last_gift_us: int
    told_streak: bool = False
    month: str = ""  # the month the figures below are of ("": not read yet)
    month_coins: int = 0
    average_coins: int = 0
    read_at_s: float = 0.0
    told_month: str = ""


def streak_reminder(v: _Viewer, at_us: int, after_min: int, gap_min: int) -> Reminder | None:
    """The streak after a gift at ``at_us``: a pause longer than the gap starts a new one; one
    reminder per streak, once it is ``after_min`` long."""
    if at_us - v.last_gift_us > gap_min * US_PER_MIN:
        v.streak_from_us, v.told_streak = at_us, False
    v.last_gift_us = at_us
    minutes = (at_us - v.streak_from_us) // US_PER_MIN
    if after_min and not v.told_streak and minutes >= after_min:
        v.told_streak = True
        return Reminder("gifting_time", minutes=int(minutes))
    return None


def month_reminder(v: _Viewer, coins: int) -> Reminder | None:
    """Once a month, when its spend passes the average month (a viewer with no history has
    none: nothing to pass)."""
    if not v.month:
        return None
    v.month_coins += coins
    if v.average_coins and v.month_coins > v.average_coins and v.told_month != v.month:
        v.told_month = v.month
        return Reminder(
            "above_average", month_coins=v.month_coins, average_month_coins=v.average_coins
        )
    return None


# (user id) -> (month key, coins spent this month, average month before it): a read.
MonthReader = Callable[[int], tuple[str, int, int]]


class Reminders:
    def __init__(self, read_month: MonthReader, *, after_min: int, gap_min: int) -> None:
        self._read_month = read_month
        self._after_min = after_min
        self._gap_min = gap_min
        self._viewers: OrderedDict[int, _Viewer] = OrderedDict()
        self._reads: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak ones

    def after_gift(self, user_id: int, coins: int, at_us: int) -> Reminder | None:
        """The reminder a committed gift's answer carries, if one is due (no database)."""
        v = self._viewers.get(user_id)
        if v is None:
            v = self._viewers[user_id] = _Viewer(at_us, at_us)
            while len(self._viewers) > VIEWERS_MAX:
                self._viewers.popitem(last=False)
        self._viewers.move_to_end(user_id)
        if time.monotonic() - v.read_at_s > MONTH_REFRESH_S and user_id not in self._reads:
            self._reads.add(user_id)
            task = asyncio.get_running_loop().create_task(self._refresh(user_id, v))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return streak_reminder(v, at_us, self._after_min, self._gap_min) or month_reminder(v, coins)

    async def _refresh(self, user_id: int, v: _Viewer) -> None:
        try:
            month, coins, average = await asyncio.to_thread(self._read_month, user_id)
        except Exception:  # a nudge: the next gift tries again
            return
        finally:
            self._reads.discard(user_id)
        v.month, v.month_coins, v.average_coins = month, coins, average
        v.read_at_s = time.monotonic()
