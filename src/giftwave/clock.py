"""Wall-clock time in integer microseconds, the one unit every table stores.

``simulated_clock`` swaps in another source for one process: the economy simulator
(``giftwave simulate``) runs the real gifting and top-up code over simulated days with it.
Nothing else sets it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, date, datetime

_source: Callable[[], int] | None = None


def now_us() -> int:
    if _source is not None:
        return _source()
    return time.time_ns() // 1000


@contextmanager
def simulated_clock(source: Callable[[], int]) -> Iterator[None]:
    """Within the block, ``now_us`` answers ``source()`` (one process, one simulation)."""
    global _source
    assert _source is None, "one simulated clock at a time"
    _source = source
    try:
        yield
    finally:
        _source = None


def day_of(ts_us: int) -> date:
    """The UTC calendar day of a timestamp: statements and daily limits count in UTC."""
    return datetime.fromtimestamp(ts_us / 1_000_000, tz=UTC).date()


def day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
