"""Wall-clock time in integer microseconds, the one unit every table stores."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime


def now_us() -> int:
    return time.time_ns() // 1000


def day_of(ts_us: int) -> date:
    """The UTC calendar day of a timestamp: statements and daily limits count in UTC."""
    return datetime.fromtimestamp(ts_us / 1_000_000, tz=UTC).date()


def day_start_us(day: date) -> int:
    return int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp()) * 1_000_000
