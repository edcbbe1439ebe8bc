"""Viewers over time: each live room's viewer count, sampled into ``analytics_stream_viewers``.

The hub counts every room's viewers once a second (summed over nodes by the broker); this takes
those counts every ``interval_s`` and keeps the most seen in each stream's minute
(``rollup.record_viewers``: an upsert that keeps the larger value). Every node samples the same
totals, so several nodes writing the same minute agree. A sample that cannot be written is
logged and the next one carries on: a chart with a missing minute, never a failed stream.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Final

from sqlalchemy import Engine

from giftwave.analytics.rollup import record_viewers
from giftwave.background import cancel
from giftwave.clock import now_us

log = logging.getLogger(__name__)

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
        self._interval_s = interval_s
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        assert self._task is None
        self._task = asyncio.create_task(self._run(), name="analytics-viewers")

    async def stop(self) -> None:
        await cancel(self._task)
        self._task = None

    async def sample(self) -> int:
        """Write one sample of every room with viewers; how many rooms it wrote."""
        at = now_us()
        samples = [(s, at, n) for s, n in self._counts().items() if n > 0]
        if samples:
            await asyncio.to_thread(record_viewers, self._db, samples)
        return len(samples)

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self._interval_s)
            try:
                await self.sample()
            except Exception:
                log.exception("could not sample the rooms' viewers")
