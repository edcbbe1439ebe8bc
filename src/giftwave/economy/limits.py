"""Per-user gifting limits: a token-bucket rate and a daily spend cap.

The rate lives in this process's memory, bounded by ``max_users`` (the least recently active users
are forgotten first). With several server processes each enforces its own share; the shared
(Redis) version comes with the real-time broker. The daily cap lives in the ledger, where it
holds to the coin whatever the number of nodes: each gift carries a leg that debits the
sender's account of the day (``daily_spend_account``) with the cap as its ``debit_limit``, in
the gift's own linked chain, and a reversal credits it back (docs/economy.md).
"""

from __future__ import annotations

import time
from collections import OrderedDict
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


def daily_spend_account(user_id: int, day: date) -> str:
    """The ledger account that counts what a user spent on gifts on ``day`` (UTC)."""
    return f"user:{user_id}:spent:{day.isoformat()}"


def daily_spend_refused(limit_coins: int, spent_coins: int) -> RateLimited:
    """The answer to a gift the ledger refused for the daily cap (``exceeds_debit_limit``)."""
    return RateLimited(
        "daily_spend_limit",
        f"gifts are limited to {limit_coins:,} coins a day",
        retry_after_s=_seconds_to_midnight_utc(),
        limit_coins=limit_coins,
        spent_coins=spent_coins,
    )


def _seconds_to_midnight_utc() -> float:
    now = time.time()
    return 86_400 - now % 86_400
