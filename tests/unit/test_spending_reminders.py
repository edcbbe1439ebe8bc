"""Gentle reminders (economy/spending_reminders.py): once per streak of continuous gifting,
once a month past the viewer's own average month, once per gift (a retry's replay counts
nothing); no database on the gift path. The same on Redis: tests/integration/
test_spending_reminder_state.py."""

from __future__ import annotations

import asyncio

from giftwave.economy.gifting import GiftSent
from giftwave.economy.spending_reminders import MonthReader, Reminders

MIN = 60_000_000


def sent(user: int, coins: int, at_us: int, *, key: str = "", replayed: bool = False) -> GiftSent:
    return GiftSent(
        send_id=f"gift:{user}:{key or at_us}",
        stream_id="s1",
        creator_id=2,
        sender_id=user,
        gift_id="rose",
        gift_version=1,
        count=1,
        coins=coins,
        diamonds=coins,
        balance_coins=0,
        created_at_us=at_us,
        replayed=replayed,
    )


def _month(figures: tuple[str, int, int]) -> MonthReader:
    """A month reader answering every viewer the same figures."""
    return lambda ids: dict.fromkeys(ids, figures)


async def test_a_streak_is_reminded_once_and_a_pause_starts_another() -> None:
    reminders = Reminders(
        lambda ids: dict.fromkeys(ids, ("2026-12", 0, 0)), after_min=30, gap_min=10
    )
    said = [await reminders.after_gift(sent(7, 1, t * MIN)) for t in range(0, 31, 5)]
    assert [r is not None for r in said] == [False] * 6 + [True]
    assert said[-1] is not None
    assert said[-1].as_dict()["reason"] == "gifting_time"
    assert said[-1].minutes == 30
    assert await reminders.after_gift(sent(7, 1, 35 * MIN)) is None  # once per streak
    # A pause longer than the gap: a new streak, reminded again after 30 minutes of it.
    for t in (50, 59, 68, 77):
        assert await reminders.after_gift(sent(7, 1, t * MIN)) is None
    assert await reminders.after_gift(sent(7, 1, 80 * MIN)) is not None
    assert await reminders.after_gift(sent(8, 1, 80 * MIN)) is None  # another viewer's own
    await reminders.settled()


async def test_a_retried_gift_neither_lengthens_the_streak_nor_says_it_again() -> None:
    reminders = Reminders(
        lambda ids: dict.fromkeys(ids, ("2026-12", 0, 0)), after_min=30, gap_min=10
    )
    for t in range(0, 30, 5):
        assert await reminders.after_gift(sent(7, 1, t * MIN)) is None
    said = await reminders.after_gift(sent(7, 1, 30 * MIN, key="k30"))
    assert said is not None
    # The same gift again (its retry, on this node or another): the same receipt, replayed.
    assert await reminders.after_gift(sent(7, 1, 30 * MIN, key="k30", replayed=True)) is None
    # A replay never advances the streak: whoever counted its gift (the node that committed
    # it) did; a replay lengthening it would say the reminder before its time.
    fresh = Reminders(_month(("2026-12", 0, 0)), after_min=30, gap_min=10)
    for t in range(0, 30, 5):
        assert await fresh.after_gift(sent(9, 1, t * MIN)) is None
    for _ in range(3):
        assert await fresh.after_gift(sent(9, 1, 31 * MIN, replayed=True)) is None
    await reminders.settled()
    await fresh.settled()


async def test_passing_the_average_month_is_reminded_once_and_a_retry_adds_nothing() -> None:
    reminders = Reminders(
        lambda ids: dict.fromkeys(ids, ("2026-12", 900, 1_000)), after_min=0, gap_min=10
    )
    assert await reminders.after_gift(sent(7, 50, 0)) is None  # the month is read off the path
    await reminders.settled()
    assert await reminders.after_gift(sent(7, 60, MIN, key="a")) is None  # 960 of 1,000
    # Its retry: before, its coins were added again (1,020: "above your average").
    assert await reminders.after_gift(sent(7, 60, MIN, key="a", replayed=True)) is None
    said = await reminders.after_gift(sent(7, 50, 2 * MIN))  # 1,010
    assert said is not None
    assert said.as_dict() == {
        "type": "spending_reminder",
        "reason": "above_average",
        "minutes": 0,
        "month_coins": 1_010,
        "average_month_coins": 1_000,
    }
    assert await reminders.after_gift(sent(7, 100, 3 * MIN)) is None  # once a month


async def test_no_history_no_average_reminder() -> None:
    reminders = Reminders(
        lambda ids: dict.fromkeys(ids, ("2026-12", 5_000, 0)), after_min=0, gap_min=10
    )
    await reminders.after_gift(sent(7, 50, 0))
    await reminders.settled()
    assert await reminders.after_gift(sent(7, 50_000, MIN)) is None


async def test_the_month_is_read_once_per_refresh_not_per_gift() -> None:
    reads: list[int] = []

    def read(users: list[int]) -> dict[int, tuple[str, int, int]]:
        reads.extend(users)
        return dict.fromkeys(users, ("2026-12", 0, 0))

    reminders = Reminders(read, after_min=0, gap_min=10)
    await asyncio.gather(*(reminders.after_gift(sent(7, 1, t * MIN)) for t in range(20)))
    await reminders.settled()
    assert reads == [7]
