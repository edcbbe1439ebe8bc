"""Redis for the state kept beside the broker: rate limits and spending reminders.

What both need, one copy: a small pool of their own (never queued behind the broker's
blocking reads), short timeouts (a check sits on a viewer's command: a slow Redis is treated
as an absent one), no retries, an outage logged at most every ``OUTAGE_LOG_EVERY_S`` with what
it means for people, and a close that never raises. Neither is money: Redis away lets chat and
likes through unthrottled and sends no reminders; the ledger keeps the limits that hold money.

    side = SideRedis(url, "rate limits", away="letting requests through until it is back")
    gcra = side.script(GCRA_SCRIPT)
    try:
        async with side.deadline():
            wait_us = await gcra(keys=[key], args=[...])
    except REDIS_ERRORS as exc:
        side.outage(exc)

``backend`` says which the broker URL asks for (memory:// or redis://), as for the broker.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from typing import Any, Final, Literal

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

log = logging.getLogger(__name__)

# A call that does not answer in this long is treated as Redis away.
TIMEOUT_S: Final = 0.25
# Calls of one process share these connections, waiting (up to TIMEOUT_S) for a free one.
# redis-py's own pool refuses past 100 at once ("Too many connections"): a burst of 3,000 gift
# checks let 2,900 through unchecked (failing open) where they now queue briefly.
CONNECTIONS_MAX: Final = 32
OUTAGE_LOG_EVERY_S: Final = 10.0

REDIS_ERRORS: Final = (RedisError, OSError, TimeoutError)


class SideRedis:
    """One Redis client for one kind of side state, with its outage log."""

    def __init__(self, url: str, what: str, *, away: str) -> None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url,
            max_connections=CONNECTIONS_MAX,
            timeout=TIMEOUT_S,
            socket_timeout=TIMEOUT_S,
            socket_connect_timeout=TIMEOUT_S,
            retry=Retry(NoBackoff(), 0),
        )
        self.client = aioredis.Redis.from_pool(pool)  # closing it closes the pool
        self._what = what  # "rate limits": the log's subject
        self._away = away  # what an outage means, said in the log
        self._logged_at = -math.inf
        self.failures = 0  # calls failed since Redis last answered

    def script(self, source: str) -> Any:
        """A Lua script called by its SHA (loaded again on a Redis that forgot it)."""
        return self.client.register_script(source)

    def deadline(self) -> asyncio.Timeout:
        """The whole call, pool wait included: twice a socket's timeout."""
        return asyncio.timeout(TIMEOUT_S * 2)

    def outage(self, exc: BaseException) -> None:
        """Count a failed call; log it if the last log is ``OUTAGE_LOG_EVERY_S`` old."""
        self.failures += 1
        now = time.monotonic()
        if now - self._logged_at >= OUTAGE_LOG_EVERY_S:
            self._logged_at = now
            log.warning(
                "%s: Redis unreachable (%s); %s",
                self._what,
                exc or type(exc).__name__,
                self._away,
            )

    def answered(self) -> None:
        """A call succeeded: if some had failed, say that Redis is back and how many."""
        if self.failures:
            log.warning(
                "%s: Redis answers again (%d calls failed meanwhile)", self._what, self.failures
            )
            self.failures = 0

    async def close(self) -> None:
        try:
            async with asyncio.timeout(TIMEOUT_S * 4):
                await self.client.aclose()
        except REDIS_ERRORS:
            pass


def backend(broker_url: str) -> Literal["memory", "redis"]:
    """Where side state lives for this broker URL: this process's memory, or Redis."""
    if broker_url.startswith("memory://"):
        return "memory"
    if broker_url.startswith(("redis://", "rediss://")):
        return "redis"
    raise ValueError(f"unknown broker URL {broker_url!r}: use memory:// or redis://")
