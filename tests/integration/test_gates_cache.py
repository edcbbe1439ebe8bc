"""The ban gate and the club gate keep their answers while other parts' notices fly; the ban
gate reads many together.

Each drops an answer that a change of its own made old, and a read that started before such a
change stores nothing. A level-up, a club's points or a subscriber's badge is no such change:
in a busy room those notices come many times a second, and when they too stopped reads from
being stored, every gift read its ban from the database (the gift path's throughput over
sockets fell from thousands of gifts a second to about a thousand)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, insert

from giftwave.db.tables import room_bans
from giftwave.live import ban_gate
from giftwave.live.ban_gate import BanGate
from giftwave.realtime.notices import (
    BanChanged,
    ClubMemberChanged,
    LevelChanged,
    SubscriberChanged,
)
from giftwave.social import club_gate
from giftwave.social.club_gate import ClubGate


class Reads:
    """The ban gate's database reads, counted; ``during`` runs inside the next read."""

    def __init__(self) -> None:
        self.count = 0  # queries
        self.pairs: list[list[tuple[int, int]]] = []  # what each asked
        self.during: list[Callable[[], None]] = []


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> Reads:
    counted = Reads()
    real = ban_gate.banned_pairs

    def counting(conn: Connection, pairs: list[tuple[int, int]]) -> set[tuple[int, int]]:
        counted.count += 1
        counted.pairs.append(sorted(pairs))
        while counted.during:
            counted.during.pop(0)()
        return real(conn, pairs)

    monkeypatch.setattr(ban_gate, "banned_pairs", counting)
    return counted


async def test_other_notices_during_a_read_do_not_keep_its_answer_from_being_kept(
    sa_engine: Engine, reads: Reads
) -> None:
    gate = BanGate(sa_engine)
    # A room levelling up while the read runs.
    reads.during.append(lambda: gate.notice(LevelChanged(user_id=99, level=12)))
    reads.during.append(lambda: gate.notice(SubscriberChanged(creator_id=1, user_id=98)))
    for _ in range(6):
        assert await gate.banned(1, 2) is False
    assert reads.count == 1  # the first answer was kept


async def test_a_ban_change_during_a_read_still_wins(sa_engine: Engine, reads: Reads) -> None:
    gate = BanGate(sa_engine)
    reads.during.append(lambda: gate.notice(BanChanged(creator_id=1, user_id=2)))
    assert await gate.banned(1, 2) is False  # read before the ban landed: not kept
    assert await gate.banned(1, 2) is False
    assert reads.count == 2  # so the next command read again
    assert await gate.banned(1, 2) is False
    assert reads.count == 2  # and kept that one
    gate.notice(None)  # notices may have been lost: nothing kept is trusted
    assert await gate.banned(1, 2) is False
    assert reads.count == 3


async def test_a_room_of_new_viewers_is_one_read_and_a_ban_is_seen(
    sa_engine: Engine, reads: Reads
) -> None:
    """Eight gifts in flight from each of 50 new viewers: one query for them all."""
    with sa_engine.begin() as conn:
        conn.execute(
            insert(room_bans).values(creator_id=1, user_id=7, banned_by=1, created_at_us=1)
        )
    gate = BanGate(sa_engine)
    asks = [gate.banned(1, user_id) for user_id in range(1, 51) for _ in range(8)]
    answers = await asyncio.gather(*asks)
    assert reads.count == 1
    assert reads.pairs == [[(1, user_id) for user_id in range(1, 51)]]
    assert [user_id for user_id, a in zip(range(1, 51), answers[::8], strict=True) if a] == [7]
    assert all(a == (i // 8 + 1 == 7) for i, a in enumerate(answers))


async def test_the_club_gate_keeps_its_answer_through_other_notices(
    sa_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same rule for the chat's club gate: a level-up elsewhere is no club change."""
    gate = ClubGate(sa_engine)
    reads = 0
    real = club_gate.level_of

    def level_while_a_room_levels_up(conn: Connection, creator_id: int, user_id: int) -> Any:
        nonlocal reads
        reads += 1
        gate.notice(LevelChanged(user_id=99, level=12))
        return real(conn, creator_id, user_id)

    monkeypatch.setattr(club_gate, "level_of", level_while_a_room_levels_up)
    for _ in range(4):
        assert await gate.badge(1, 2) is None  # no club: no badge
    assert reads == 1
    gate.notice(ClubMemberChanged(creator_id=1, user_id=2))  # this one is the gate's
    assert await gate.badge(1, 2) is None
    assert reads == 2
