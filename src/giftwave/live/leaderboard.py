"""Top gifters of a stream: coins desc, then who got there first, then user id (stable)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class _Entry:
    user_id: int
    handle: str
    coins: int
    reached_seq: int  # when the total last changed: earlier wins a tie


class Leaderboard:
    def __init__(self) -> None:
        self._entries: dict[int, _Entry] = {}
        self._seq = 0

    def add(self, user_id: int, handle: str, coins: int) -> None:
        self._seq += 1
        entry = self._entries.get(user_id)
        if entry is None:
            self._entries[user_id] = _Entry(user_id, handle, coins, self._seq)
        else:
            entry.coins += coins
            entry.reached_seq = self._seq

    def restore(self, gifters: Iterable[tuple[int, str, int]]) -> None:
        """Start again from (user id, handle, coins) in the order their totals were reached,
        earliest first (a room rebuilt from the database: by each one's latest gift)."""
        self._entries = {}
        self._seq = 0
        for user_id, handle, coins in gifters:
            self._seq += 1
            self._entries[user_id] = _Entry(user_id, handle, coins, self._seq)

    def top(self, n: int = 10) -> list[dict[str, Any]]:
        ranked = sorted(self._entries.values(), key=lambda e: (-e.coins, e.reached_seq, e.user_id))[
            :n
        ]
        return [
            {"rank": i + 1, "user_id": e.user_id, "handle": e.handle, "coins": e.coins}
            for i, e in enumerate(ranked)
        ]
