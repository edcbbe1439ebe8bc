"""INSERTs that may meet a row already there: with ON CONFLICT clauses, in the dialect of the
connection (SQLite or PostgreSQL), or under a savepoint that a unique key may refuse."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Final

from sqlalchemy import Column, Connection, Executable, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError

# SQLite binds at most 32,766 values a statement: stay well under it.
SQLITE_VALUES_PER_STATEMENT: Final = 10_000


def insert_for(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT in the dialect of ``conn``, with its ON CONFLICT clauses."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def insert_new(conn: Connection, statement: Executable) -> bool:
    """Run ``statement`` (an INSERT) under a savepoint; False when the database refused it (a
    unique key already held the row: made before, or by a concurrent first use). Either way the
    caller's transaction goes on, and can read the row that is there."""
    try:
        with conn.begin_nested():
            conn.execute(statement)
    except IntegrityError:
        return False
    return True


def insert_new_rows(
    conn: Connection,
    table: Table,
    rows: Sequence[Mapping[str, Any]],
    returning: Sequence[Column[Any]],
) -> list[tuple[Any, ...]]:
    """INSERT ``rows`` (each with the same keys), skipping those whose key is held already;
    ``returning`` of the rows inserted. On PostgreSQL one statement with one array per column
    (``unnest``): a fifth of the CPU of SQLAlchemy's insert-many with RETURNING, which binds
    every value of every row in Python (measured: 5 against 23-33 us a row)."""
    if not rows:
        return []
    tail = " ON CONFLICT DO NOTHING RETURNING " + ", ".join(c.name for c in returning)
    if conn.dialect.name != "postgresql":
        return [
            tuple(r)
            for sql, values in _sqlite_statements(table, rows, tail)
            for r in conn.exec_driver_sql(sql, values)
        ]
    head, arrays = _unnest_rows(conn, table, rows)
    return [tuple(r) for r in conn.execute(text(head + tail), arrays)]


def upsert_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]], on_conflict: str
) -> None:
    """INSERT ``rows`` (each with the same keys, no two with the same conflict key), each held
    key resolved by ``on_conflict``: what follows ON CONFLICT, in the syntax both databases
    share (``(user_id) DO UPDATE SET coins = excluded.coins``). On PostgreSQL one ``unnest``
    statement (``insert_new_rows``: why); on SQLite as few multi-row statements."""
    if not rows:
        return
    tail = f" ON CONFLICT {on_conflict}"
    if conn.dialect.name != "postgresql":
        for sql, values in _sqlite_statements(table, rows, tail):
            conn.exec_driver_sql(sql, values)
        return
    head, arrays = _unnest_rows(conn, table, rows)
    conn.execute(text(head + tail), arrays)


def qmark_rows(columns: int, rows: int) -> str:
    """``(?,?),(?,?)``: ``rows`` rows of ``columns`` placeholders, in SQLite's style. Not
    cached here: a follower's chunks come in every size up to a statement's thousands of rows,
    and keeping each text would grow without bound (the ledger store caches its own few)."""
    return ",".join(["(" + ",".join("?" * columns) + ")"] * rows)


def _names(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[str]:
    return [c.name for c in table.columns if c.name in rows[0]]


def _sqlite_statements(
    table: Table, rows: Sequence[Mapping[str, Any]], tail: str
) -> Iterator[tuple[str, tuple[Any, ...]]]:
    """The INSERT of ``rows`` and ``tail`` as statements of many VALUES rows each, with their
    positional parameters, sent as the driver takes them (no per-value work in SQLAlchemy).
    A follower writes these holding SQLite's one write lock, which the ledger's writer waits
    for: 500 rows took 1.8-2.5 ms as SQLAlchemy's executemany of named parameters, 0.8-0.9
    ms so (docs/benchmarks.md, session 17)."""
    names = _names(table, rows)
    head = f"INSERT INTO {table.name} ({', '.join(names)}) VALUES "
    per = max(1, SQLITE_VALUES_PER_STATEMENT // len(names))
    for start in range(0, len(rows), per):
        part = rows[start : start + per]
        params = tuple([row[name] for row in part for name in names])
        yield head + qmark_rows(len(names), len(part)) + tail, params


def _unnest_rows(
    conn: Connection, table: Table, rows: Sequence[Mapping[str, Any]]
) -> tuple[str, dict[str, list[Any]]]:
    """The INSERT of ``rows`` up to its conflict clause on PostgreSQL, and its parameters:
    one array per column, unnested into rows."""
    names = _names(table, rows)
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=conn.dialect)}[])" for name in names
    )
    head = f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
    return head, {name: [row[name] for row in rows] for name in names}
