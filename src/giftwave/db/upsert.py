"""INSERTs that may meet a row already there: with ON CONFLICT clauses, in the dialect of the
connection (SQLite or PostgreSQL), or under a savepoint that a unique key may refuse."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import Column, Connection, Executable, Table, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError


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
    if conn.dialect.name != "postgresql":
        statement = insert_for(conn, table).on_conflict_do_nothing().returning(*returning)
        return [tuple(r) for r in conn.execute(statement, list(rows))]
    names = [c.name for c in table.columns if c.name in rows[0]]
    arrays = ", ".join(
        f"CAST(:{name} AS {table.c[name].type.compile(dialect=conn.dialect)}[])" for name in names
    )
    sql = (
        f"INSERT INTO {table.name} ({', '.join(names)}) SELECT * FROM unnest({arrays})"
        f" ON CONFLICT DO NOTHING RETURNING {', '.join(c.name for c in returning)}"
    )
    return [tuple(r) for r in conn.execute(text(sql), {n: [row[n] for row in rows] for n in names})]
