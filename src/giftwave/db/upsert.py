"""INSERT with ON CONFLICT clauses, in the dialect of the connection (SQLite or PostgreSQL)."""

from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT in the dialect of ``conn``, with its ON CONFLICT clauses."""
    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)
