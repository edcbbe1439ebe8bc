"""The studio's "gifts per minute" starts from the database: a stream's committed gifts of the
last minute, per second, on SQLite and PostgreSQL (others' streams, reversed gifts and older
ones left out)."""

from __future__ import annotations

import itertools

from sqlalchemy import Engine, insert

from giftwave.db.tables import gift_sends
from giftwave.live.gift_rate import US_PER_S, recent_gifts_per_second

NOW_US = 1_800_000_000 * US_PER_S
_n = itertools.count(1)


def _send(
    engine: Engine, at_us: int, count: int, *, stream: str = "st_a", reversed_: bool = False
) -> None:
    n = next(_n)
    with engine.begin() as conn:
        conn.execute(
            insert(gift_sends).values(
                sender_id=9,
                idempotency_key=f"k{n}",
                stream_id=stream,
                creator_id=7,
                gift_id="rose",
                gift_version=1,
                count=count,
                coins=count,
                diamonds=count,
                transfer_id=f"t{n}",
                reversed=reversed_,
                created_at_us=at_us,
            )
        )


def test_the_last_minute_of_a_stream_per_second(sa_engine: Engine) -> None:
    second = NOW_US // US_PER_S
    _send(sa_engine, NOW_US - 61 * US_PER_S, 100)  # too old
    _send(sa_engine, NOW_US - 30 * US_PER_S, 3)
    _send(sa_engine, NOW_US - 30 * US_PER_S + 10, 4)  # the same second: added up
    _send(sa_engine, NOW_US - 2 * US_PER_S, 5)
    _send(sa_engine, NOW_US - 2 * US_PER_S, 50, reversed_=True)  # undone: not counted
    _send(sa_engine, NOW_US - 1 * US_PER_S, 60, stream="st_b")  # another stream of the creator
    with sa_engine.connect() as conn:
        found = recent_gifts_per_second(conn, "st_a", 7, NOW_US)
    assert found == [(second - 30, 7), (second - 2, 5)]
    with sa_engine.connect() as conn:
        assert recent_gifts_per_second(conn, "st_none", 7, NOW_US) == []
