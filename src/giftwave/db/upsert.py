"""INSERTs that may meet a row already there: with ON CONFLICT clauses, in the dialect of the
connection (SQLite or PostgreSQL), or under a savepoint that a unique key may refuse."""

from __future__ import annotations

from sqlalchemy import Connection, Executable, Table
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
