"""Per-user gifting limits: a rate and a daily spend cap.

The rate is a ``ratelimit.UserLimit``: one allowance per user whatever the node, in Redis with
a redis:// broker (failing open: it protects patience, not money), in memory otherwise. The
daily cap lives in the ledger, where it holds to the coin whatever the number of nodes (never
failing open: it is money): each gift carries a leg that debits the sender's account of the
day (``daily_spend_account``) with the cap as its ``debit_limit``, in the gift's own linked
chain, and a reversal credits it back (docs/economy.md, "The daily spend cap").
"""

from __future__ import annotations

import time
from datetime import date

from giftwave.errors import Code, RateLimited
from giftwave.ratelimit import Rate, UserLimit


def gift_limiter(*, rate_per_s: float, burst: int) -> UserLimit:
    """A user's gifts, on every node together (``GIFTWAVE_GIFT_RATE_PER_S`` 0: unlimited)."""
    return UserLimit(
        "gift",
        Rate(rate_per_s, burst) if rate_per_s > 0 else None,
        code=Code.GIFT_RATE_LIMITED,
        detail="too many gifts too fast; slow down",
    )


def daily_spend_account(user_id: int, day: date) -> str:
    """The ledger account that counts what a user spent on gifts on ``day`` (UTC)."""
    return f"user:{user_id}:spent:{day.isoformat()}"


def period_spend_account(user_id: int, period: str, key: str) -> str:
    """The ledger account that counts a user's spend of one week or month (their own limits:
    economy/spending.py), e.g. ``user:7:spent:month:2026-12``."""
    return f"user:{user_id}:spent:{period}:{key}"


def daily_spend_refused(limit_coins: int, spent_coins: int) -> RateLimited:
    """The answer to a gift the ledger refused for the daily cap (``exceeds_debit_limit``)."""
    return RateLimited(
        Code.DAILY_SPEND_LIMIT,
        f"gifts are limited to {limit_coins:,} coins a day",
        retry_after_s=_seconds_to_midnight_utc(),
        limit_coins=limit_coins,
        spent_coins=spent_coins,
    )


def _seconds_to_midnight_utc() -> float:
    now = time.time()
    return 86_400 - now % 86_400
