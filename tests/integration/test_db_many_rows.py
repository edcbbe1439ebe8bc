"""Many rows in one go (db/upsert.py): ``insert_new_rows`` writes and returns the rows whose
key is free and leaves the others; ``upsert_rows`` resolves each held key by its clause. The
same on SQLite and PostgreSQL (one ``unnest`` statement there)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, event, select

from giftwave.db.tables import gifter_creators, level_ups
from giftwave.db.upsert import SQLITE_VALUES_PER_STATEMENT, insert_new_rows, upsert_rows


def _row(user_id: int, level: int, send_id: str) -> dict[str, object]:
    return {
        "user_id": user_id,
        "level": level,
        "stream_id": "st_probe",
        "creator_id": 7,
        "send_id": send_id,
        "seq": user_id * 100 + level,
        "at_us": 1_700_000_000_000_000,
    }


def test_only_the_new_rows_are_written_and_returned(sa_engine: Engine) -> None:
    returning = (level_ups.c.user_id, level_ups.c.level)
    with sa_engine.begin() as conn:
        first = insert_new_rows(conn, level_ups, [_row(1, 1, "a"), _row(1, 2, "b")], returning)
        assert sorted((r[0], r[1]) for r in first) == [(1, 1), (1, 2)]
        # (1, 2) is held: skipped, its first row kept; (2, 1) and (1, 3) are new.
        again = insert_new_rows(
            conn, level_ups, [_row(1, 2, "other"), _row(2, 1, "c"), _row(1, 3, "d")], returning
        )
        assert sorted((r[0], r[1]) for r in again) == [(1, 3), (2, 1)]
        assert insert_new_rows(conn, level_ups, [], returning) == []
        stored = conn.execute(
            select(level_ups.c.user_id, level_ups.c.level, level_ups.c.send_id).order_by(
                level_ups.c.user_id, level_ups.c.level
            )
        ).all()
    assert [tuple(r) for r in stored] == [(1, 1, "a"), (1, 2, "b"), (1, 3, "d"), (2, 1, "c")]


def test_held_keys_are_resolved_by_the_clause(sa_engine: Engine) -> None:
    add = "(user_id, creator_id) DO UPDATE SET coins = gifter_creators.coins + excluded.coins"
    with sa_engine.begin() as conn:
        upsert_rows(conn, gifter_creators, [{"user_id": 1, "creator_id": 9, "coins": 5}], add)
        upsert_rows(
            conn,
            gifter_creators,
            [
                {"user_id": 1, "creator_id": 9, "coins": 7},  # held: added to
                {"user_id": 2, "creator_id": 9, "coins": 3},  # new
            ],
            add,
        )
        upsert_rows(conn, gifter_creators, [], add)
        stored = conn.execute(
            select(gifter_creators.c.user_id, gifter_creators.c.coins).order_by(
                gifter_creators.c.user_id
            )
        ).all()
    assert [tuple(r) for r in stored] == [(1, 12), (2, 3)]


def test_more_rows_than_one_statement_binds(sa_engine: Engine) -> None:
    """On SQLite the rows go as statements of many rows each (at most
    SQLITE_VALUES_PER_STATEMENT values): every statement's rows are written and returned."""
    # level_ups rows bind 7 values: 5 statements, and more values than SQLite binds in one
    rows = 4 * SQLITE_VALUES_PER_STATEMENT // 7 + 5
    returning = (level_ups.c.user_id, level_ups.c.level)
    add = "(user_id, creator_id) DO UPDATE SET coins = gifter_creators.coins + excluded.coins"
    given = [{"user_id": u, "creator_id": 9, "coins": 1} for u in range(rows)]
    bound: list[int] = []  # values per INSERT statement

    def count(_c: Any, _cur: Any, statement: str, params: Any, *_: Any) -> None:
        if statement.startswith("INSERT INTO"):
            bound.append(len(params) if isinstance(params, tuple) else 0)

    event.listen(sa_engine, "before_cursor_execute", count)
    with sa_engine.begin() as conn:
        held = insert_new_rows(
            conn, level_ups, [_row(u, 1, f"h{u}") for u in range(0, rows, 2)], returning
        )
        new = insert_new_rows(
            conn, level_ups, [_row(u, 1, f"n{u}") for u in range(rows)], returning
        )
        upsert_rows(conn, gifter_creators, given, add)
        upsert_rows(conn, gifter_creators, given[::3], add)
        sends = {u: s for u, s in conn.execute(select(level_ups.c.user_id, level_ups.c.send_id))}
        coins = {
            u: c
            for u, c in conn.execute(select(gifter_creators.c.user_id, gifter_creators.c.coins))
        }
    event.remove(sa_engine, "before_cursor_execute", count)
    if sa_engine.dialect.name == "sqlite":  # 3, 5, 2 and 1 statements: none binds too many
        assert len(bound) == 11
        assert max(bound) <= SQLITE_VALUES_PER_STATEMENT
    else:
        assert len(bound) == 4  # one unnest statement each
    assert sorted(r[0] for r in held) == list(range(0, rows, 2))
    assert sorted(r[0] for r in new) == list(range(1, rows, 2))  # the odd ones were free
    assert sends == {u: f"h{u}" if u % 2 == 0 else f"n{u}" for u in range(rows)}
    assert coins == {u: 2 if u % 3 == 0 else 1 for u in range(rows)}
