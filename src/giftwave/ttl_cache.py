"""A small bounded cache whose entries go stale after a fixed time.

Hot paths (authenticating a token, looking up a live stream) read through it; writers that
change an entry in this process drop it at once, other processes see the change within ``ttl_s``.

With ``refresh_s``, ``get_refreshing`` also says when an entry in use has passed that age (once
per entry): the caller reads it again in the background and keeps serving it meanwhile, so a
busy entry is replaced before it lapses and no request waits for it. Without that, the entries
of a room's senders, stored together, lapsed together and their requests all waited for one
read (the tail of the gift latency on PostgreSQL, docs/benchmarks.md).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")


class TtlCache(Generic[K, V]):
    def __init__(self, *, max_entries: int, ttl_s: float, refresh_s: float | None = None) -> None:
        assert max_entries >= 1
        assert ttl_s > 0
        assert refresh_s is None or 0 < refresh_s < ttl_s
        self._max = max_entries
        self._ttl_s = ttl_s
        self._refresh_s = refresh_s
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._refreshing: set[K] = set()  # past refresh_s, and a new read was asked for

    def get(self, key: K) -> V | None:
        entry = self._fresh(key)
        return None if entry is None else entry[1]

    def get_refreshing(self, key: K) -> tuple[V | None, bool]:
        """``get``, and whether the caller should read the entry again now: true once for an
        entry older than ``refresh_s``, until it is stored again."""
        entry = self._fresh(key)
        if entry is None:
            return None, False
        stored_at, value = entry
        if (
            self._refresh_s is None
            or time.monotonic() - stored_at <= self._refresh_s
            or key in self._refreshing
        ):
            return value, False
        self._refreshing.add(key)
        return value, True

    def _fresh(self, key: K) -> tuple[float, V] | None:
        """The entry (stored at, value), unless it is missing or has lapsed (then forgotten)."""
        entry = self._entries.get(key)
        if entry is not None and time.monotonic() - entry[0] > self._ttl_s:
            self.drop(key)
            return None
        return entry

    def put(self, key: K, value: V) -> None:
        self._entries[key] = (time.monotonic(), value)
        self._entries.move_to_end(key)
        self._refreshing.discard(key)
        while len(self._entries) > self._max:
            oldest, _ = self._entries.popitem(last=False)  # the oldest write goes first
            self._refreshing.discard(oldest)

    def drop(self, key: K) -> None:
        self._entries.pop(key, None)
        self._refreshing.discard(key)

    def clear(self) -> None:
        self._entries.clear()
        self._refreshing.clear()
