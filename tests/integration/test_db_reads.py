"""``reads(engine)``: on PostgreSQL a read is its statement alone (autocommit: no BEGIN, no
ROLLBACK round trips), and the pool's connections go back transactional; SQLite keeps its
transaction (one snapshot for a connection's statements)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, text

from giftwave.db.engine import SQLITE_BUSY_TIMEOUT_MS, make_engine, reads
from giftwave.db.urls import parse_database_url

PG_IDLE, PG_IN_TRANSACTION = 0, 2  # libpq's transaction status


def _status(dbapi: Any) -> int:
    return int(dbapi.info.transaction_status)


def test_reads_run_outside_a_transaction_on_postgresql_only(sa_engine: Engine) -> None:
    reader = reads(sa_engine)
    if sa_engine.dialect.name != "postgresql":
        assert reader is sa_engine
        return
    # One connection in the pool, so both blocks below use the same one.
    engine = create_engine(sa_engine.url, pool_size=1, max_overflow=0)
    try:
        with reads(engine).connect() as conn:
            conn.execute(text("SELECT 1")).all()
            dbapi = conn.connection.dbapi_connection
            assert _status(dbapi) == PG_IDLE  # no transaction around the statement
        with engine.connect() as conn:
            conn.execute(text("SELECT 1")).all()
            assert conn.connection.dbapi_connection is dbapi
            assert _status(dbapi) == PG_IN_TRANSACTION  # back to transactions for writers
    finally:
        engine.dispose()


def test_derived_writers_commit_without_a_flush_of_their_own_on_sqlite(
    sa_engine: Engine,
) -> None:
    """``make_engine(derived=True)`` (the followers): on SQLite ``synchronous=NORMAL``, the
    app's own engine ``FULL``; the write-ahead log and the busy timeout alike on both."""
    if sa_engine.dialect.name != "sqlite":
        return  # PostgreSQL: no such setting, the same engine
    url = parse_database_url(sa_engine.url.render_as_string(hide_password=False))
    for derived, synchronous in ((False, 2), (True, 1)):  # FULL, NORMAL
        engine = make_engine(url, derived=derived)
        try:
            with engine.connect() as conn:
                pragma = conn.exec_driver_sql
                assert pragma("PRAGMA synchronous").scalar() == synchronous
                assert pragma("PRAGMA journal_mode").scalar() == "wal"
                assert pragma("PRAGMA busy_timeout").scalar() == SQLITE_BUSY_TIMEOUT_MS
        finally:
            engine.dispose()
