"""Rate limits shared by every server process and node: one interface, two backends, chosen
from ``GIFTWAVE_BROKER_URL`` in one place (``open_rate_limiter``), like the broker:

    memory://   one process: a table of keys in memory (bounded: the least recently used
                keys are forgotten first)
    redis://…   several nodes: one Redis key per limited thing, updated by a Lua script, so
                every node spends from the same allowance; Redis's clock, not the nodes'

Every limit is a GCRA (the "generic cell rate algorithm": a token bucket kept as one number,
the theoretical arrival time of the next request): ``rate.per_s`` sustained, ``rate.burst``
at once. ``gcra`` is the rule, pure; both backends apply it (the Lua script is the same few
lines). A key is a string the caller builds: "chat:<user>:<stream>", say.

``UserLimit`` is one such limit per user with its refusal (gifts, share links, follows): it
starts in memory and is given the node's shared limiter when the app starts (``use``).

Redis away (restarting, out of reach) must not stop chat or likes: the Redis backend then
answers "allowed" (fails open), logs it at most once per ``OUTAGE_LOG_EVERY_S``, and tries
Redis again on the next call. What it protects is people's patience, not money: money has its
own limits in the database and the ledger.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Final, Protocol

from giftwave import side_redis
from giftwave.errors import Code, RateLimited
from giftwave.side_redis import REDIS_ERRORS, SideRedis

log = logging.getLogger(__name__)

MEMORY_MAX_KEYS: Final = 100_000
KEY_PREFIX: Final = "giftwave:rate:"
KEY_MAX_CHARS: Final = 200

# KEYS[1]: the key; ARGV: interval between requests (us), burst. Returns 0 (allowed) or the
# microseconds until the next request would be. The same arithmetic as ``gcra`` below.
GCRA_SCRIPT: Final = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0')
if tat < now then tat = now end
local new_tat = tat + interval
local allow_at = new_tat - burst * interval
if now < allow_at then return allow_at - now end
redis.call('SET', KEYS[1], string.format('%.0f', new_tat), 'PX',
  math.floor((new_tat - now) / 1000) + 1)
return 0
"""


@dataclass(frozen=True, slots=True)
class Rate:
    per_s: float
    burst: int

    def __post_init__(self) -> None:
        assert self.per_s > 0
        assert self.burst >= 1

    @property
    def interval_us(self) -> int:
        return max(1, round(1_000_000 / self.per_s))


def gcra(tat_us: int, now_us: int, rate: Rate) -> tuple[int, int]:
    """(the key's new theoretical arrival time, 0) when a request at ``now_us`` is allowed;
    (``tat_us`` unchanged, microseconds to wait) when it is not."""
    interval = rate.interval_us
    new_tat = max(tat_us, now_us) + interval
    allow_at = new_tat - rate.burst * interval
    if now_us < allow_at:
        return tat_us, allow_at - now_us
    return new_tat, 0


class RateLimiter(Protocol):
    async def hit(self, key: str, rate: Rate) -> float:
        """Spend one request of ``key``'s allowance: 0.0 when allowed, else the seconds until
        the next one would be. Never raises for an outage of the backend."""
        ...

    async def close(self) -> None: ...


class MemoryRateLimiter:
    def __init__(self, max_keys: int = MEMORY_MAX_KEYS) -> None:
        assert max_keys >= 1
        self._max_keys = max_keys
        self._tats: OrderedDict[str, int] = OrderedDict()

    async def hit(self, key: str, rate: Rate) -> float:
        return self.hit_now(key, rate)

    def hit_now(self, key: str, rate: Rate) -> float:
        """``hit`` without a coroutine: what a gift pays on a single node."""
        now = time.monotonic_ns() // 1000
        tat, wait_us = gcra(self._tats.pop(key, 0), now, rate)
        self._tats[key] = tat
        while len(self._tats) > self._max_keys:
            self._tats.popitem(last=False)
        return wait_us / 1e6

    async def close(self) -> None:
        self._tats.clear()


class RedisRateLimiter:
    def __init__(self, url: str) -> None:
        # Its own client: a rate check must not queue behind the broker's blocking reads.
        self._side = SideRedis(url, "rate limits", away="letting requests through until it is back")
        self._script = self._side.script(GCRA_SCRIPT)

    async def hit(self, key: str, rate: Rate) -> float:
        assert len(key) <= KEY_MAX_CHARS
        try:
            async with self._side.deadline():
                wait_us = await self._script(
                    keys=[KEY_PREFIX + key], args=[rate.interval_us, rate.burst]
                )
        except REDIS_ERRORS as exc:
            self._side.outage(exc)
            return 0.0
        self._side.answered()
        return int(wait_us) / 1e6

    async def close(self) -> None:
        await self._side.close()


def open_rate_limiter(broker_url: str) -> RateLimiter:
    if side_redis.backend(broker_url) == "memory":
        return MemoryRateLimiter()
    return RedisRateLimiter(broker_url)


class UserLimit:
    """One per-user limit with its refusal: ``take`` spends one of the user's allowance or
    raises ``RateLimited(code)`` saying when the next one comes. ``rate`` None limits nothing.

    It counts in this process's memory until ``use`` gives it the node's limiter (the app's
    start: Redis with a redis:// broker, so every node spends from one allowance). On memory
    the check is a plain call, no coroutine: the gift path pays nothing for the indirection.
    """

    def __init__(self, name: str, rate: Rate | None, *, code: Code, detail: str) -> None:
        assert name
        assert ":" not in name  # the user id follows the one colon
        self._name = name
        self._rate = rate
        self._code = code
        self._detail = detail
        self._limiter: RateLimiter = MemoryRateLimiter()
        self._memory: MemoryRateLimiter | None = self._limiter

    def use(self, limiter: RateLimiter) -> None:
        """Count in ``limiter`` from now on (what was counted before is not carried over)."""
        self._limiter = limiter
        self._memory = limiter if isinstance(limiter, MemoryRateLimiter) else None

    async def take(self, user_id: int) -> None:
        if self._rate is None:
            return
        key = f"{self._name}:{user_id}"
        if self._memory is not None:
            wait_s = self._memory.hit_now(key, self._rate)
        else:
            wait_s = await self._limiter.hit(key, self._rate)
        if wait_s:
            raise RateLimited(self._code, self._detail, retry_after_s=wait_s)
