"""Gentle reminders (economy/spending_reminders.py): once per streak of continuous gifting,
once a month past the viewer's own average month; per node, no database on the gift path."""

from __future__ import annotations

import asyncio

from giftwave.economy.spending_reminders import Reminders

MIN = 60_000_000


async def test_a_streak_is_reminded_once_and_a_pause_starts_another() -> None:
    reminders = Reminders(lambda _: ("2026-12", 0, 0), after_min=30, gap_min=10)
    said = [reminders.after_gift(7, 1, t * MIN) for t in range(0, 31, 5)]
    assert [r is not None for r in said] == [False] * 6 + [True]
    assert said[-1] is not None
    assert said[-1].as_dict()["reason"] == "gifting_time"
    assert said[-1].minutes == 30
    assert reminders.after_gift(7, 1, 35 * MIN) is None  # once per streak
    # A pause longer than the gap: a new streak, reminded again after 30 minutes of it.
    assert reminders.after_gift(7, 1, 50 * MIN) is None
    assert reminders.after_gift(7, 1, 59 * MIN) is None
    assert reminders.after_gift(7, 1, 68 * MIN) is None
    assert reminders.after_gift(7, 1, 77 * MIN) is None
    assert reminders.after_gift(7, 1, 80 * MIN) is not None
    assert reminders.after_gift(8, 1, 80 * MIN) is None  # another viewer: their own streak


async def test_passing_the_average_month_is_reminded_once() -> None:
    reminders = Reminders(lambda _: ("2026-12", 900, 1_000), after_min=0, gap_min=10)
    assert reminders.after_gift(7, 50, 0) is None  # the month is read off the gift path
    await asyncio.sleep(0.2)
    assert reminders.after_gift(7, 50, MIN) is None  # 950 of 1,000
    said = reminders.after_gift(7, 100, 2 * MIN)  # 1,050
    assert said is not None
    assert said.as_dict() == {
        "type": "spending_reminder",
        "reason": "above_average",
        "minutes": 0,
        "month_coins": 1_050,
        "average_month_coins": 1_000,
    }
    assert reminders.after_gift(7, 100, 3 * MIN) is None  # once a month


async def test_no_history_no_average_reminder() -> None:
    reminders = Reminders(lambda _: ("2026-12", 5_000, 0), after_min=0, gap_min=10)
    reminders.after_gift(7, 50, 0)
    await asyncio.sleep(0.2)
    assert reminders.after_gift(7, 50_000, MIN) is None
