"""Gentle reminders in the room (docs/economy.md, "Responsible spending"): after a stretch of
continuous gifting, and when the month's spend passes the viewer's own average month, the
viewer hears a ``spending_reminder`` for them alone, on their own socket (docs/protocol.md).

Each gift counts once, on whichever node takes it:

- **Across nodes.** A viewer's state (their streak, this month's figures, what they were told)
  lives where the node's other per-user limits live (ratelimit.py, chosen from the broker URL):
  in this process's memory with ``memory://`` (one process), in one Redis hash per viewer with
  ``redis://``, advanced by one Lua script per gift. So a viewer whose sockets are on two nodes
  (two devices, a reconnect that landed elsewhere) builds one streak from every gift, and each
  reminder is said once, by the node whose gift made it due.
- **Once per gift.** Only a gift this request committed advances the state; a retry with the
  same idempotency key (``GiftSent.replayed``, on any node) answers the same receipt and
  changes nothing here, so it neither lengthens the streak, adds its coins to the month again,
  nor says a reminder twice.
- **Off the database.** The gift path reads no database for a reminder: memory, or the one
  script (a Redis round trip; the gift rate limit already makes one). The month's figures are
  read off the gift path, at most every ``MONTH_REFRESH_S`` per viewer on all nodes together
  (the script hands the read to one node), and grown by every node's gifts meanwhile.

A reminder is a nudge, not money: Redis away means no reminder (logged, like the rate limits),
a Redis restart forgets the streaks, and a hash left alone for ``KEEP_S`` is dropped (a viewer
told about their month then gifting again days later may be told once more).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final, Protocol

from giftwave import side_redis
from giftwave.db.batch_read import BatchReader
from giftwave.economy.gifting import GiftSent
from giftwave.side_redis import REDIS_ERRORS, SideRedis

log = logging.getLogger(__name__)

US_PER_MIN: Final = 60_000_000
VIEWERS_MAX: Final = 100_000  # memory: the least recently gifting viewers are forgotten first
MONTH_REFRESH_S: Final = 600
READS_PENDING_MAX: Final = 10_000  # month reads waiting for the reader thread
KEEP_S: Final = 2 * 86_400  # Redis: a viewer's hash outlives a pause this long (and the gap)
KEY_PREFIX: Final = "giftwave:remind:"

GIFTING_TIME: Final = "gifting_time"
ABOVE_AVERAGE: Final = "above_average"


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
class ViewerState:
    """One viewer's reminders: what the Redis hash holds, field for field."""

    streak_from_us: int
    last_gift_us: int
    told_streak: bool = False
    month: str = ""  # the month the figures below are of ("": not read yet)
    month_coins: int = 0
    average_coins: int = 0
    told_month: str = ""
    read_at_s: float = -math.inf  # when a node last took the month's read on itself


def advance(
    v: ViewerState, at_us: int, coins: int, after_min: int, gap_min: int
) -> Reminder | None:
    """A committed gift at ``at_us`` of ``coins``: the reminder it makes due, if any (the Lua
    script below is the same arithmetic).

    The streak: a pause longer than the gap starts a new one; one reminder per streak, once it
    is ``after_min`` long (0: never). Gifts may arrive slightly out of order from several
    nodes: the streak runs from its earliest gift to its latest. The month: every gift adds its
    coins once the month's figures are known; once a month, when they pass the average month
    (a viewer with no history has none: nothing to pass). A gift that makes both due says the
    streak's; the month's waits for the next gift."""
    if at_us - v.last_gift_us > gap_min * US_PER_MIN:
        v.streak_from_us, v.told_streak = at_us, False
    v.streak_from_us = min(v.streak_from_us, at_us)
    v.last_gift_us = max(v.last_gift_us, at_us)
    minutes = (v.last_gift_us - v.streak_from_us) // US_PER_MIN
    said: Reminder | None = None
    if after_min and not v.told_streak and minutes >= after_min:
        v.told_streak = True
        said = Reminder(GIFTING_TIME, minutes=int(minutes))
    if v.month:
        v.month_coins += coins
        due = v.average_coins and v.month_coins > v.average_coins and v.told_month != v.month
        if due and said is None:
            v.told_month = v.month
            said = Reminder(
                ABOVE_AVERAGE, month_coins=v.month_coins, average_month_coins=v.average_coins
            )
    return said


# (user ids) -> each one's (month key, coins spent this month, average month before it): a
# database read for many viewers at once.
MonthReader = Callable[[list[int]], dict[int, tuple[str, int, int]]]


class ReminderState(Protocol):
    """Where the viewers' states are kept: memory (one process) or Redis (every node)."""

    async def advance(
        self, user_id: int, at_us: int, coins: int, after_min: int, gap_min: int
    ) -> tuple[Reminder | None, bool]:
        """The reminder a gift makes due, and whether this node should read the month now."""
        ...

    async def set_month(self, user_id: int, month: str, coins: int, average: int) -> None:
        """The month's figures, as read from the database."""
        ...

    async def close(self) -> None: ...


class MemoryReminderState:
    def __init__(self, max_viewers: int = VIEWERS_MAX) -> None:
        self._max = max_viewers
        self._viewers: OrderedDict[int, ViewerState] = OrderedDict()

    async def advance(
        self, user_id: int, at_us: int, coins: int, after_min: int, gap_min: int
    ) -> tuple[Reminder | None, bool]:
        v = self._viewers.get(user_id)
        if v is None:
            v = self._viewers[user_id] = ViewerState(at_us, at_us)
            while len(self._viewers) > self._max:
                self._viewers.popitem(last=False)
        else:
            self._viewers.move_to_end(user_id)  # the least recent goes first when full
        said = advance(v, at_us, coins, after_min, gap_min)
        now = time.monotonic()
        read = now - v.read_at_s > MONTH_REFRESH_S
        if read:
            v.read_at_s = now
        return said, read

    async def set_month(self, user_id: int, month: str, coins: int, average: int) -> None:
        v = self._viewers.get(user_id)
        if v is not None:
            v.month, v.month_coins, v.average_coins = month, coins, average

    async def close(self) -> None:
        self._viewers.clear()


# KEYS[1]: the viewer's hash. ARGV: at_us, coins, after_min, gap_min, refresh_s, keep_s.
# Returns {said (0 none, 1 gifting_time, 2 above_average), minutes, month coins, average,
# read (1: this node reads the month now)}. ``advance`` above, line for line; Redis's clock
# for the read's turn. Numbers are doubles in Lua: microseconds now (~1.8e15) are exact.
ADVANCE_SCRIPT: Final = """
local k = KEYS[1]
local at = tonumber(ARGV[1])
local coins = tonumber(ARGV[2])
local after_min = tonumber(ARGV[3])
local gap_us = tonumber(ARGV[4]) * 60000000
local v = redis.call('HMGET', k, 'from', 'last', 'told', 'month', 'coins', 'avg', 'told_month',
  'read')
local from = tonumber(v[1]) or at
local last = tonumber(v[2]) or at
local told = v[3] == '1'
if at - last > gap_us then from = at; told = false end
if at < from then from = at end
if at > last then last = at end
local minutes = math.floor((last - from) / 60000000)
local said = 0
if after_min > 0 and not told and minutes >= after_min then told = true; said = 1 end
local month = v[4] or ''
local mcoins = tonumber(v[5]) or 0
local avg = tonumber(v[6]) or 0
local told_month = v[7] or ''
if month ~= '' then
  mcoins = mcoins + coins
  if avg > 0 and mcoins > avg and told_month ~= month and said == 0 then
    told_month = month; said = 2
  end
end
local t = redis.call('TIME')
local now = tonumber(t[1])
local read_at = tonumber(v[8]) or -1e18
local read = 0
if now - read_at > tonumber(ARGV[5]) then read = 1; read_at = now end
redis.call('HSET', k, 'from', string.format('%.0f', from), 'last', string.format('%.0f', last),
  'told', told and '1' or '0', 'coins', string.format('%.0f', mcoins),
  'told_month', told_month, 'read', string.format('%.0f', read_at))
redis.call('EXPIRE', k, tonumber(ARGV[6]))
return {said, minutes, mcoins, avg, read}
"""


class RedisReminderState:
    def __init__(self, url: str) -> None:
        # Its own small pool, as the rate limits: never queued behind the broker's reads.
        self._side = SideRedis(url, "spending reminders", away="no reminders until it is back")
        self._script = self._side.script(ADVANCE_SCRIPT)

    async def advance(
        self, user_id: int, at_us: int, coins: int, after_min: int, gap_min: int
    ) -> tuple[Reminder | None, bool]:
        keep_s = max(KEEP_S, gap_min * 60)
        try:
            async with self._side.deadline():
                said, minutes, month_coins, average, read = await self._script(
                    keys=[f"{KEY_PREFIX}{user_id}"],
                    args=[at_us, coins, after_min, gap_min, MONTH_REFRESH_S, keep_s],
                )
        except REDIS_ERRORS as exc:
            self._side.outage(exc)
            return None, False
        self._side.answered()
        reminder = None
        if said == 1:
            reminder = Reminder(GIFTING_TIME, minutes=int(minutes))
        elif said == 2:
            reminder = Reminder(
                ABOVE_AVERAGE, month_coins=int(month_coins), average_month_coins=int(average)
            )
        return reminder, bool(read)

    async def set_month(self, user_id: int, month: str, coins: int, average: int) -> None:
        key = f"{KEY_PREFIX}{user_id}"
        try:
            async with (
                self._side.deadline(),
                self._side.client.pipeline(transaction=True) as pipe,
            ):
                pipe.hset(key, mapping={"month": month, "coins": coins, "avg": average})
                pipe.expire(key, KEEP_S)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            self._side.outage(exc)

    async def close(self) -> None:
        await self._side.close()


def open_reminder_state(broker_url: str) -> ReminderState:
    """Memory for ``memory://``, Redis for ``redis://``: where the rate limits are."""
    if side_redis.backend(broker_url) == "memory":
        return MemoryReminderState()
    return RedisReminderState(broker_url)


class Reminders:
    """The reminders of one node: the state (memory until ``use`` gives it the node's, at the
    app's start) and the month's reads, off the gift path."""

    def __init__(self, read_month: MonthReader, *, after_min: int, gap_min: int) -> None:
        self._after_min = after_min
        self._gap_min = gap_min
        self._state: ReminderState = MemoryReminderState()
        self._tasks: set[asyncio.Task[None]] = set()  # held: the loop keeps only weak ones
        # The month reads of many viewers go together, one batch at a time: read one by one on
        # the loop's shared worker threads, a room of new viewers (each one's first gift asks
        # for a read) queued a thousand reads in front of the gifts' own reads.
        self._reads: BatchReader[int, tuple[str, int, int]] = BatchReader(
            read_month, max_in_flight=1
        )
        self._skipped = 0

    def use(self, state: ReminderState) -> None:
        """Keep the viewers' states in ``state`` from now on (nothing is carried over)."""
        self._state = state

    async def after_gift(self, sent: GiftSent) -> Reminder | None:
        """The reminder a gift this request committed makes due; None for a retry's replay
        (its gift was counted when it was committed) and when none is due."""
        if sent.replayed:
            return None
        said, read = await self._state.advance(
            sent.sender_id, sent.created_at_us, sent.coins, self._after_min, self._gap_min
        )
        if read:
            if len(self._tasks) >= READS_PENDING_MAX:  # bounded: the month waits for a later one
                self._skipped += 1
                if self._skipped == 1 or self._skipped % READS_PENDING_MAX == 0:
                    log.warning("spending reminders: %d month reads skipped", self._skipped)
                return said
            task = asyncio.get_running_loop().create_task(self._refresh(sent.sender_id))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        return said

    async def _refresh(self, user_id: int) -> None:
        try:
            month, coins, average = await self._reads.get(user_id)
        except Exception:  # a nudge: the next read, MONTH_REFRESH_S on, tries again
            log.warning("spending reminders: the month of user %d could not be read", user_id)
            return
        await self._state.set_month(user_id, month, coins, average)

    async def settled(self) -> None:
        """Wait for the month reads under way (tests, and a clean stop)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def close(self) -> None:
        """Drop the month reads still waiting (a nudge: nothing is owed)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*list(self._tasks), return_exceptions=True)
