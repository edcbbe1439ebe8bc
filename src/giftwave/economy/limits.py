"""Per-user gifting limits: a rate and a daily spend cap.

The rate is a ``ratelimit.UserLimit``: one allowance per user whatever the node, in Redis with
a redis:// broker (failing open: it protects patience, not money), in memory otherwise. The
daily cap lives in this process's memory, bounded by ``max_users`` (the least recently active
users are forgotten first); it counts spend net of reversed gifts, read again from the
database before it refuses anyone (``DailySpend``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from giftwave.errors import RateLimited
from giftwave.ratelimit import Rate, UserLimit


def refilled(tokens: float, last_s: float, now_s: float, rate_per_s: float, burst: float) -> float:
    """A token bucket's tokens at ``now_s``: what it had, plus the rate since, up to the burst."""
    return min(burst, tokens + (now_s - last_s) * rate_per_s)


class TokenBucket:
    """One token bucket, in this process (per-user limits are ``ratelimit.UserLimit``)."""

    def __init__(self, rate_per_s: float, burst: float) -> None:
        self.rate, self.burst, self.tokens, self.last = rate_per_s, burst, burst, time.monotonic()

    def take(self) -> bool:
        """Spend a token; False when there is none."""
        now = time.monotonic()
        self.tokens = refilled(self.tokens, self.last, now, self.rate, self.burst)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


def gift_limiter(*, rate_per_s: float, burst: int) -> UserLimit:
    """A user's gifts, on every node together (``GIFTWAVE_GIFT_RATE_PER_S`` 0: unlimited)."""
    return UserLimit(
        "gift",
        Rate(rate_per_s, burst) if rate_per_s > 0 else None,
        code="gift_rate_limited",
        detail="too many gifts too fast; slow down",
    )


@dataclass(slots=True)
class _Day:
    """One user's UTC day, as this process counts it against the cap."""

    spent_coins: int  # net spend as last read from the database, plus reservations since
    in_flight_coins: int = 0  # reserved here, not yet committed nor given back
    reserved_coins: int = 0  # every reservation made here since the entry was created


@dataclass(frozen=True, slots=True)
class Mark:
    """What was in flight when a re-read of the database began (``DailySpend.mark``)."""

    in_flight_coins: int
    reserved_coins: int


class DailySpend:
    """Coins each user spent on gifts today (UTC), net of reversed gifts: loaded from the
    database on first use, counted here after that.

    A reversal gives its coins back to the allowance (docs/economy.md), but it is made by an
    admin, perhaps on another node, and it changes only the database. So before this process
    refuses a gift on its own count, it reads the day's net spend again (``mark``, ``read``
    off the event loop, then ``refresh``): a viewer refused here is always refused on what
    the database says now, plus what this process has in flight. Reads happen only for gifts
    that would be refused, which the gift rate limit bounds.
    """

    def __init__(
        self,
        *,
        max_coins: int,
        load: Callable[[int, date], int],
        max_users: int = 100_000,
    ) -> None:
        self._max_coins = max_coins
        self._load = load
        self._max_users = max_users
        self._days: OrderedDict[tuple[int, date], _Day] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._max_coins > 0

    def needs_load(self, user_id: int, day: date) -> bool:
        return self.enabled and (user_id, day) not in self._days

    def load(self, user_id: int, day: date) -> None:
        """Read the day's total from the database (call off the event loop)."""
        spent = self._load(user_id, day)
        self._days.setdefault((user_id, day), _Day(spent))
        while len(self._days) > self._max_users:
            self._days.popitem(last=False)

    def would_refuse(self, user_id: int, day: date, coins: int) -> bool:
        """``reserve`` would refuse these coins on this process's count."""
        entry = self._days.get((user_id, day))
        return self.enabled and (entry.spent_coins if entry else 0) + coins > self._max_coins

    def mark(self, user_id: int, day: date) -> Mark:
        entry = self._days.get((user_id, day))
        if entry is None:
            return Mark(0, 0)
        return Mark(entry.in_flight_coins, entry.reserved_coins)

    def read(self, user_id: int, day: date) -> int:
        """The day's net spend in the database now (call off the event loop)."""
        return self._load(user_id, day)

    def refresh(self, user_id: int, day: date, spent_coins: int, mark: Mark) -> None:
        """Count what the database said (``read`` after ``mark``) and what may not be in it
        yet: what was in flight at the mark, and every reservation since. A gift that
        committed meanwhile may be counted twice, which can only refuse early, never allow
        more than the cap."""
        entry = self._days.get((user_id, day))
        if entry is None:
            return
        since = entry.reserved_coins - mark.reserved_coins
        entry.spent_coins = spent_coins + mark.in_flight_coins + since

    def reserve(self, user_id: int, day: date, coins: int) -> None:
        if not self.enabled:
            return
        key = (user_id, day)
        entry = self._days.get(key)
        if entry is None:
            entry = self._days[key] = _Day(0)
        if entry.spent_coins + coins > self._max_coins:
            raise RateLimited(
                "daily_spend_limit",
                f"gifts are limited to {self._max_coins:,} coins a day",
                retry_after_s=_seconds_to_midnight_utc(),
                limit_coins=self._max_coins,
                spent_coins=entry.spent_coins,
            )
        entry.spent_coins += coins
        entry.in_flight_coins += coins
        entry.reserved_coins += coins
        self._days.move_to_end(key)

    def settle(self, user_id: int, day: date, coins: int) -> None:
        """The reserved gift committed: it is in the database now, still counted here."""
        entry = self._days.get((user_id, day))
        if self.enabled and entry is not None:
            entry.in_flight_coins = max(0, entry.in_flight_coins - coins)

    def release(self, user_id: int, day: date, coins: int) -> None:
        """The reserved gift did not commit: the coins are allowed again."""
        entry = self._days.get((user_id, day))
        if self.enabled and entry is not None:
            entry.spent_coins = max(0, entry.spent_coins - coins)
            entry.in_flight_coins = max(0, entry.in_flight_coins - coins)


def _seconds_to_midnight_utc() -> float:
    now = time.time()
    return 86_400 - now % 86_400
