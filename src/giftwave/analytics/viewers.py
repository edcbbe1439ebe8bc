"""Viewers over time: each live room's viewer count, sampled into ``analytics_stream_viewers``.

The hub counts every room's viewers once a second (summed over nodes by the broker); this takes
those counts every ``interval_s`` and keeps the most seen in each stream's minute
(``rollup.record_viewers``: an upsert that keeps the larger value). Every node samples the same
totals, so several nodes writing the same minute agree. A sample that cannot be written is
logged and a later one carries on (``periodic``: backing off while the database is away): a
chart with a missing minute, never a failed stream.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Final

from sqlalchemy import Engine

from giftwave.analytics.rollup import record_viewers
from giftwave.clock import now_us
from giftwave.periodic import PeriodicTask, Schedule

SAMPLE_INTERVAL_S: Final = 10.0  # six samples a minute: a short peak is still seen


class ViewerSampler:
    def __init__(
        self,
        db: Engine,
        counts: Callable[[], dict[str, int]],
        *,
        interval_s: float = SAMPLE_INTERVAL_S,
    ) -> None:
        assert interval_s > 0
        self._db = db
        self._counts = counts
        # ±10% jitter of 10 s still takes about six samples a minute.
        self._loop = PeriodicTask("analytics-viewers", self._sample, Schedule(interval_s))

    def start(self) -> None:
        self._loop.start()

    async def stop(self) -> None:
        await self._loop.stop()

    async def sample(self) -> int:
        """Write one sample of every room with viewers; how many rooms it wrote."""
        at = now_us()
        samples = [(s, at, n) for s, n in self._counts().items() if n > 0]
        if samples:
            await asyncio.to_thread(record_viewers, self._db, samples)
        return len(samples)

    async def _sample(self) -> None:
        await self.sample()
