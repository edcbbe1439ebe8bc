"""insert_new: a row that is already there is a False, not an error, on both backends, and the
caller's transaction goes on (first uses of overlay keys, bans, reports and reposts rely on it)."""

from __future__ import annotations

from sqlalchemy import Engine, insert, select

from giftwave.db.tables import server_secrets
from giftwave.db.upsert import insert_new


def test_the_second_insert_of_a_key_is_refused_and_the_first_row_stands(
    sa_engine: Engine,
) -> None:
    with sa_engine.begin() as conn:
        first = insert(server_secrets).values(name="s", secret="first", created_at_us=1)
        again = insert(server_secrets).values(name="s", secret="again", created_at_us=2)
        assert insert_new(conn, first) is True
        assert insert_new(conn, again) is False
        # The refusal rolled back only its savepoint: the same transaction reads and writes on.
        kept = conn.execute(select(server_secrets.c.secret).where(server_secrets.c.name == "s"))
        assert kept.scalar_one() == "first"
        other = insert(server_secrets).values(name="t", secret="other", created_at_us=3)
        assert insert_new(conn, other) is True
    with sa_engine.connect() as conn:
        rows = conn.execute(select(server_secrets.c.name, server_secrets.c.secret)).all()
    assert sorted(rows) == [("s", "first"), ("t", "other")]
