"""Which gifts a room has already counted.

A committed gift is broadcast at least once: again when its sender retries (the process that
committed it may have died before telling the room), and again when a publish that seemed to
fail is sent once more. So a room counts a gift the first time its ``send_id`` arrives only.

Bounded: a room remembers the last ``capacity`` gifts (a set to look them up, a deque for
their age); 100,000 ids cost about 20 MB at most per room. A gift recorded no later than the
newest one forgotten (``floor_us``) is taken as counted: a room rebuilt from the database
knows only the newest sends by id, and everything older is in its totals already. The price:
a gift whose event comes later than 100,000 newer gifts is left out of the live totals (never
out of the ledger, and a room rebuilt from the database has it).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from typing import Final

SEEN_MAX: Final = 100_000


class SeenIds:
    __slots__ = ("_capacity", "_ids", "_order", "floor_us")

    def __init__(self, capacity: int = SEEN_MAX) -> None:
        assert capacity > 0
        self._capacity = capacity
        self._ids: set[str] = set()
        self._order: deque[tuple[str, int]] = deque()
        self.floor_us = -1  # nothing forgotten yet: every new id is new

    def __len__(self) -> int:
        return len(self._ids)

    def first(self, key: str, at_us: int) -> bool:
        """True the first time ``key`` (recorded at ``at_us``) arrives; it is remembered."""
        if key in self._ids or at_us <= self.floor_us:
            return False
        self._ids.add(key)
        self._order.append((key, at_us))
        if len(self._order) > self._capacity:
            old, old_at_us = self._order.popleft()
            self._ids.discard(old)
            self.floor_us = max(self.floor_us, old_at_us)
        return True

    def reset(self, known: Iterable[tuple[str, int]], floor_us: int = -1) -> None:
        """Remember exactly ``known`` (oldest first), and take anything recorded at or
        before ``floor_us`` as counted."""
        self._ids.clear()
        self._order.clear()
        self.floor_us = floor_us
        for key, at_us in known:
            if key not in self._ids:
                self._ids.add(key)
                self._order.append((key, at_us))
        while len(self._order) > self._capacity:
            old, old_at_us = self._order.popleft()
            self._ids.discard(old)
            self.floor_us = max(self.floor_us, old_at_us)
