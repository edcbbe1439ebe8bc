"""DailySpend re-reads the database before refusing, without losing what is in flight: a
gift reserved but not yet committed, or reserved while the read ran, still counts."""

from __future__ import annotations

from datetime import date

import pytest

from giftwave.economy.limits import DailySpend
from giftwave.errors import RateLimited

DAY = date(2026, 12, 6)


def test_a_refresh_counts_the_database_and_what_is_in_flight() -> None:
    stored = {"net": 900}
    daily = DailySpend(max_coins=1_000, load=lambda _user, _day: stored["net"])
    daily.load(1, DAY)
    daily.reserve(1, DAY, 60)  # in flight: not in the database yet
    assert daily.would_refuse(1, DAY, 50)
    stored["net"] = 0  # an admin reversed the 900 coins of gifts, elsewhere
    mark = daily.mark(1, DAY)
    net = daily.read(1, DAY)
    daily.reserve(1, DAY, 30)  # reserved while the read was running
    daily.refresh(1, DAY, net, mark)
    assert not daily.would_refuse(1, DAY, 910)
    assert daily.would_refuse(1, DAY, 911)  # 0 + 60 + 30 spent: 910 left
    daily.settle(1, DAY, 60)
    daily.release(1, DAY, 30)  # that one failed: allowed again
    daily.reserve(1, DAY, 940)
    with pytest.raises(RateLimited) as refused:
        daily.reserve(1, DAY, 1)
    assert refused.value.code == "daily_spend_limit"
