"""Fan club points from likes and watch time, on SQLite AND PostgreSQL: likes counted on two
nodes add up exactly, only for members; a member watching on two nodes at once is credited
once per interval; points follow the published table."""

from __future__ import annotations

import random

from sqlalchemy import Engine, insert, select

from giftwave.db.tables import fan_club_members, streams
from giftwave.social.club_points import ClubActivity, _write
from giftwave.social.clubs import enroll, points_of

CREATOR = 7
MEMBERS = (11, 12, 13)
OUTSIDER = 99
STREAM = "s-club-points"


def _setup(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(
            insert(streams).values(
                id=STREAM,
                creator_id=CREATOR,
                title="t",
                language="en",
                status="live",
                started_at_us=1,
            )
        )
        for user_id in MEMBERS:
            enroll(conn, CREATOR, user_id, 1, None)


def _row(db: Engine, user_id: int) -> dict[str, int]:
    with db.connect() as conn:
        row = conn.execute(
            select(fan_club_members).where(
                fan_club_members.c.creator_id == CREATOR, fan_club_members.c.user_id == user_id
            )
        ).one()
    return {k: int(row._mapping[k]) for k in ("likes", "watch_s", "points", "gift_coins")}


async def test_likes_on_two_nodes_add_up_exactly(sa_engine: Engine) -> None:
    _setup(sa_engine)
    rng = random.Random(5)
    nodes = [ClubActivity(sa_engine, lambda: {}) for _ in range(2)]
    expected = dict.fromkeys(MEMBERS, 0)
    for _ in range(300):
        user_id = rng.choice((*MEMBERS, OUTSIDER))
        count = rng.randint(1, 50)
        rng.choice(nodes).like(STREAM, user_id, count)
        if user_id != OUTSIDER:
            expected[user_id] += count
        if rng.random() < 0.05:
            await rng.choice(nodes).write()
    for node in nodes:
        await node.write()
    for user_id in MEMBERS:
        row = _row(sa_engine, user_id)
        assert row["likes"] == expected[user_id]
        assert row["points"] == points_of(0, expected[user_id], 0)
    with sa_engine.connect() as conn:
        outsider = conn.execute(
            select(fan_club_members).where(fan_club_members.c.user_id == OUTSIDER)
        ).first()
    assert outsider is None  # a non-member's likes make no member


def test_watching_on_two_nodes_is_credited_once(sa_engine: Engine) -> None:
    _setup(sa_engine)
    seen = {STREAM: [MEMBERS[0], OUTSIDER]}
    t0 = 1_000_000_000_000
    _write(sa_engine, {}, seen, 30, t0)  # node A
    _write(sa_engine, {}, seen, 30, t0 + 1_000_000)  # node B, a second later: the same time
    assert _row(sa_engine, MEMBERS[0])["watch_s"] == 30
    _write(sa_engine, {}, seen, 30, t0 + 30_000_000)  # node A, an interval on
    _write(sa_engine, {}, seen, 30, t0 + 31_000_000)  # node B
    row = _row(sa_engine, MEMBERS[0])
    assert row["watch_s"] == 60
    assert row["points"] == points_of(0, 0, 60)
    assert _row(sa_engine, MEMBERS[1])["watch_s"] == 0  # not watching
