"""Many point reads from many requests, one query per batch.

A gift's receipt carries the sender's new balance, read after the ledger committed. At
thousands of gifts a second, one query (and one worker-thread hop) per gift costs more than
the gift; instead every read asked for during one turn of the event loop goes out as one
``WHERE id IN (…)`` query on a worker thread. At most ``max_in_flight`` queries run at once,
so under load the waiting reads pile into the next batch rather than into more threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class BatchReader(Generic[K, V]):
    def __init__(
        self,
        fetch: Callable[[list[K]], dict[K, V]],
        *,
        batch_max_keys: int = 1000,
        max_in_flight: int = 2,
    ) -> None:
        """``fetch(keys)`` runs on a worker thread and returns a value for every key."""
        self._fetch = fetch
        self._batch_max = batch_max_keys
        self._max_in_flight = max_in_flight
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._in_flight = 0
        self._scheduled = False
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        if not self._scheduled:
            self._scheduled = True
            loop.call_soon(self._flush)
        return await future

    def prefetch(self, key: K) -> None:
        """Read ``key`` with the next batch for nobody waiting: ``fetch`` stores what it reads
        (a cache entry refreshed before it lapses, ``TtlCache.get_refreshing``)."""
        self._waiting.setdefault(key, [])
        if not self._scheduled:
            self._scheduled = True
            asyncio.get_running_loop().call_soon(self._flush)

    def _flush(self) -> None:
        self._scheduled = False
        while self._waiting and self._in_flight < self._max_in_flight:
            keys = list(self._waiting)[: self._batch_max]
            batch = {key: self._waiting.pop(key) for key in keys}
            self._in_flight += 1
            task = asyncio.create_task(self._read(batch))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _read(self, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        try:
            values = await asyncio.to_thread(self._fetch, list(batch))
        except Exception as exc:
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        finally:
            self._in_flight -= 1
            if self._waiting and not self._scheduled:
                self._scheduled = True
                asyncio.get_running_loop().call_soon(self._flush)
        for key, futures in batch.items():
            for future in futures:
                if future.done():
                    continue
                if key in values:
                    future.set_result(values[key])
                else:
                    future.set_exception(KeyError(key))
