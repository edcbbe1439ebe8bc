"""Per-user gifting limits: a token-bucket rate and a daily spend cap.

Both live in this process's memory, bounded by ``max_users`` (the least recently active users
are forgotten first). With several server processes each enforces its own share; the shared
(Redis) version comes with the real-time broker.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date

from giftwave.errors import RateLimited


def refilled(tokens: float, last_s: float, now_s: float, rate_per_s: float, burst: float) -> float:
    """A token bucket's tokens at ``now_s``: what it had, plus the rate since, up to the burst."""
    return min(burst, tokens + (now_s - last_s) * rate_per_s)


class TokenBucket:
    """One token bucket (one socket's likes, say); ``UserRateLimiter`` keeps one per user."""

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


class UserRateLimiter:
    """A token bucket per user: ``take`` spends one token or raises ``RateLimited`` with
    ``code`` and ``detail`` and when the next token comes. A rate of 0 limits nothing. Gifts,
    share links and follows each have one (``gift_limiter`` and their own modules)."""

    def __init__(
        self, *, rate_per_s: float, burst: int, max_users: int, code: str, detail: str
    ) -> None:
        self._rate = rate_per_s
        self._burst = float(burst)
        self._max_users = max_users
        self._code = code
        self._detail = detail
        self._buckets: OrderedDict[int, tuple[float, float]] = OrderedDict()

    def take(self, user_id: int, now_s: float | None = None) -> None:
        if self._rate <= 0:
            return
        now = time.monotonic() if now_s is None else now_s
        tokens, last = self._buckets.pop(user_id, (self._burst, now))
        tokens = refilled(tokens, last, now, self._rate, self._burst)
        if tokens < 1:
            self._buckets[user_id] = (tokens, now)
            raise RateLimited(self._code, self._detail, retry_after_s=(1 - tokens) / self._rate)
        self._buckets[user_id] = (tokens - 1, now)
        while len(self._buckets) > self._max_users:
            self._buckets.popitem(last=False)


def gift_limiter(*, rate_per_s: float, burst: int, max_users: int = 100_000) -> UserRateLimiter:
    return UserRateLimiter(
        rate_per_s=rate_per_s,
        burst=burst,
        max_users=max_users,
        code="gift_rate_limited",
        detail="too many gifts too fast; slow down",
    )


class DailySpend:
    """Coins each user spent on gifts today (UTC), loaded from the database on first use."""

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
        self._spent: OrderedDict[tuple[int, date], int] = OrderedDict()

    @property
    def enabled(self) -> bool:
        return self._max_coins > 0

    def needs_load(self, user_id: int, day: date) -> bool:
        return self.enabled and (user_id, day) not in self._spent

    def load(self, user_id: int, day: date) -> None:
        """Read the day's total from the database (call off the event loop)."""
        spent = self._load(user_id, day)
        self._spent.setdefault((user_id, day), spent)
        while len(self._spent) > self._max_users:
            self._spent.popitem(last=False)

    def reserve(self, user_id: int, day: date, coins: int) -> None:
        if not self.enabled:
            return
        key = (user_id, day)
        spent = self._spent.get(key, 0)
        if spent + coins > self._max_coins:
            raise RateLimited(
                "daily_spend_limit",
                f"gifts are limited to {self._max_coins:,} coins a day",
                retry_after_s=_seconds_to_midnight_utc(),
                limit_coins=self._max_coins,
                spent_coins=spent,
            )
        self._spent[key] = spent + coins
        self._spent.move_to_end(key)

    def release(self, user_id: int, day: date, coins: int) -> None:
        key = (user_id, day)
        if self.enabled and key in self._spent:
            self._spent[key] = max(0, self._spent[key] - coins)


def _seconds_to_midnight_utc() -> float:
    now = time.time()
    return 86_400 - now % 86_400
