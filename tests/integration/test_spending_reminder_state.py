"""Spending reminders' state on both backends (economy/spending_reminders.py): the Lua script
on Redis says exactly what the memory state says for the same gifts, and two nodes on one
Redis build one streak from both nodes' gifts and say each reminder once, whichever node's
gift made it due."""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from giftwave.economy.gifting import GiftSent
from giftwave.economy.spending_reminders import (
    KEY_PREFIX,
    MemoryReminderState,
    RedisReminderState,
    Reminder,
    Reminders,
    ReminderState,
)

REDIS_URL = os.environ.get("GIFTWAVE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
MIN = 60_000_000
T0 = 1_796_000_000_000_000  # December 2026, in microseconds


@pytest.fixture
async def user_id() -> AsyncIterator[int]:
    """A user id no other test uses: the Redis may be shared with other test runs."""
    user = 10**12 + secrets.randbelow(10**12)
    yield user
    client = aioredis.from_url(REDIS_URL)
    try:
        await client.delete(f"{KEY_PREFIX}{user}")
    finally:
        await client.aclose()


def _state(backend: str) -> ReminderState:
    return MemoryReminderState() if backend == "memory" else RedisReminderState(REDIS_URL)


def _sent(user: int, coins: int, at_us: int, replayed: bool = False) -> GiftSent:
    return GiftSent(
        f"gift:{user}:{at_us}", "s1", 2, user, "rose", 1, 1, coins, coins, 0, at_us, replayed
    )


def _reminders(state: ReminderState, month: tuple[str, int, int]) -> Reminders:
    reminders = Reminders(lambda ids: dict.fromkeys(ids, month), after_min=30, gap_min=10)
    reminders.use(state)
    return reminders


@pytest.mark.parametrize("backend", ["memory", "redis"])
async def test_the_same_gifts_say_the_same_reminders_on_either_backend(
    backend: str, user_id: int
) -> None:
    state = _state(backend)
    reminders = _reminders(state, ("2026-12", 900, 1_000))
    try:
        said: list[Reminder | None] = []
        # A streak of 35 minutes (reminded at 30), a pause, the month passing its average,
        # a retry among them, a gift from another node arriving a little out of order.
        plan = [
            (0, 10, False),
            (5, 10, False),
            (4, 10, False),  # out of order: inside the streak, changes nothing
            (15, 10, False),
            (24, 10, False),
            (30, 10, False),
            (30, 10, True),  # the retry of the gift at 30
            (35, 10, False),
            (50, 10, False),  # a pause longer than 10 minutes: a new streak
            (55, 100, False),
            (56, 100, False),
        ]
        for minute, coins, replayed in plan:
            said.append(
                await reminders.after_gift(_sent(user_id, coins, T0 + minute * MIN, replayed))
            )
            await reminders.settled()  # the month's first read lands before the next gift
        assert [r and (r.reason, r.minutes, r.month_coins) for r in said] == [
            None,
            None,
            None,
            None,
            None,
            ("gifting_time", 30, 0),
            None,
            None,
            None,
            # 900 read after the first gift (it includes it), then 7 gifts of 10 and one of 100.
            ("above_average", 0, 1_070),
            None,
        ]
        assert await reminders.after_gift(_sent(user_id, 500, T0 + 57 * MIN)) is None  # once
    finally:
        await state.close()


async def test_two_nodes_build_one_streak_and_say_it_once(user_id: int) -> None:
    node_a, node_b = RedisReminderState(REDIS_URL), RedisReminderState(REDIS_URL)
    on_a = _reminders(node_a, ("2026-12", 0, 0))
    on_b = _reminders(node_b, ("2026-12", 0, 0))
    try:
        # 20 minutes on node A, then the viewer's socket lands on node B: 12 more.
        for minute in (0, 6, 12, 18, 20):
            assert await on_a.after_gift(_sent(user_id, 1, T0 + minute * MIN)) is None
        for minute in (24, 28):
            assert await on_b.after_gift(_sent(user_id, 1, T0 + minute * MIN)) is None
        said = await on_b.after_gift(_sent(user_id, 1, T0 + 32 * MIN))
        assert said is not None  # per node, B alone had 8 minutes
        assert (said.reason, said.minutes) == ("gifting_time", 32)
        # Said once for the streak: not again by either node, nor by a retry of B's gift.
        assert await on_a.after_gift(_sent(user_id, 1, T0 + 33 * MIN)) is None
        assert await on_a.after_gift(_sent(user_id, 1, T0 + 32 * MIN, replayed=True)) is None
        assert await on_b.after_gift(_sent(user_id, 1, T0 + 34 * MIN)) is None
        await on_a.settled()
        await on_b.settled()
    finally:
        await node_a.close()
        await node_b.close()


async def test_redis_away_says_nothing_and_raises_nothing(user_id: int) -> None:
    state = RedisReminderState("redis://127.0.0.1:1/0")  # nothing listens on port 1
    reminders = _reminders(state, ("2026-12", 0, 0))
    try:
        for minute in range(0, 40, 5):
            assert await reminders.after_gift(_sent(user_id, 1, T0 + minute * MIN)) is None
    finally:
        await state.close()
