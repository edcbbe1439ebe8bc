"""``reads(engine)``: on PostgreSQL a read is its statement alone (autocommit: no BEGIN, no
ROLLBACK round trips), and the pool's connections go back transactional; SQLite keeps its
transaction (one snapshot for a connection's statements)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, create_engine, text

from giftwave.db.engine import reads

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
