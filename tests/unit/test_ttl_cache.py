"""The TTL cache's refresh-ahead and the batch reader's prefetch, on a clock the test moves."""

from __future__ import annotations

import asyncio

import pytest

from giftwave import ttl_cache
from giftwave.db.batch_read import BatchReader
from giftwave.ttl_cache import TtlCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    c = Clock()
    monkeypatch.setattr(ttl_cache.time, "monotonic", c)
    return c


def test_an_entry_past_refresh_age_asks_for_one_read_and_is_served_until_it_lapses(
    clock: Clock,
) -> None:
    cache: TtlCache[str, int] = TtlCache(max_entries=10, ttl_s=10, refresh_s=5)
    cache.put("a", 1)
    assert cache.get_refreshing("a") == (1, False)  # fresh
    clock.now += 6
    assert cache.get_refreshing("a") == (1, True)  # past 5 s: read it again, once
    assert cache.get_refreshing("a") == (1, False)  # the read is on its way
    cache.put("a", 2)  # the read came back: fresh again, and asks again later
    clock.now += 6
    assert cache.get_refreshing("a") == (2, True)
    clock.now += 5  # the read never came back: the entry lapses as before
    assert cache.get_refreshing("a") == (None, False)
    cache.put("a", 3)
    clock.now += 6
    assert cache.get_refreshing("a") == (3, True)  # a new entry asks again
    cache.drop("a")
    assert cache.get_refreshing("a") == (None, False)


def test_without_refresh_age_nothing_is_refreshed_and_evicted_keys_are_forgotten(
    clock: Clock,
) -> None:
    plain: TtlCache[str, int] = TtlCache(max_entries=10, ttl_s=10)
    plain.put("a", 1)
    clock.now += 9
    assert plain.get_refreshing("a") == (1, False)
    small: TtlCache[int, int] = TtlCache(max_entries=2, ttl_s=10, refresh_s=1)
    for k in range(3):
        small.put(k, k)
    clock.now += 2
    assert small.get_refreshing(0) == (None, False)  # evicted
    assert small.get_refreshing(2) == (2, True)


async def test_prefetch_reads_in_the_next_batch_for_nobody_waiting() -> None:
    stored: dict[int, int] = {}
    batches: list[list[int]] = []

    def fetch(keys: list[int]) -> dict[int, int]:
        batches.append(sorted(keys))
        values = {k: k * 10 for k in keys}
        stored.update(values)
        return values

    reader: BatchReader[int, int] = BatchReader(fetch)
    reader.prefetch(1)
    reader.prefetch(2)
    assert await reader.get(3) == 30  # one batch: the prefetched keys and the awaited one
    for _ in range(5):
        await asyncio.sleep(0)
    assert batches == [[1, 2, 3]]
    assert stored == {1: 10, 2: 20, 3: 30}
