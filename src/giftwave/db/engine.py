"""SQLAlchemy engines and Alembic migrations, from one ``GIFTWAVE_DATABASE_URL``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, create_engine, event

from giftwave.db.urls import Backend, DatabaseUrl

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
SQLITE_BUSY_TIMEOUT_MS = 10_000


class SchemaOutOfDate(Exception):
    """The database is not at the schema this code needs: run ``giftwave migrate``."""


def make_engine(db: DatabaseUrl, *, derived: bool = False) -> Engine:
    """An engine for everything but the posting engine's hot path.

    ``derived``: for writers whose every row is computed from the committed ledger and written
    in the transaction that moves their position in it (the followers, followers.py). On
    SQLite their commits do not wait for the disk (``synchronous=NORMAL`` in WAL mode): a
    commit appends to the write-ahead log, and the ledger's next commit, which does wait
    (``FULL``), makes it durable with its own, since the log is one file written in order. A
    power cut between the two loses the follower's last chunk and its position together, and
    the chunk is computed again. What it saves is a disk flush made while holding SQLite's one
    write lock, which the ledger's writer waits behind (docs/benchmarks.md, session 16).
    PostgreSQL is unchanged."""
    if db.backend is Backend.SQLITE:
        # Requests read from worker threads: a pool smaller than the thread pool would open
        # and close connections (and re-run the pragmas) on every busy request.
        engine = create_engine(db.sqlalchemy_url, pool_size=32, max_overflow=32)
        event.listen(engine, "connect", _derived_pragmas if derived else _sqlite_pragmas)
        event.listen(engine, "savepoint", _sqlite_begin_before_savepoint)
        return engine
    return create_engine(db.sqlalchemy_url, pool_pre_ping=True, pool_size=16, max_overflow=16)


def reads(engine: Engine) -> Engine:
    """``engine`` for reads that write nothing, on the hot paths (batched gift-path reads):
    on PostgreSQL in autocommit, so a read is the pool's ping and its query, without the BEGIN
    before it and the ROLLBACK after (measured: a third less time per read, a fifth less CPU).
    Each statement sees what was committed when it began, as under READ COMMITTED (the
    isolation used here) inside a transaction. SQLite keeps its transaction: there a
    connection's statements share one snapshot, which a reader of several tables may rely on.
    The same pool: a connection goes back to it transactional again."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="AUTOCOMMIT")
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any, synchronous: str = "FULL") -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute(f"PRAGMA synchronous={synchronous}")
    cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    cursor.close()


def _derived_pragmas(dbapi_connection: Any, record: Any) -> None:
    _sqlite_pragmas(dbapi_connection, record, "NORMAL")


def _sqlite_begin_before_savepoint(conn: Connection, _name: str | None) -> None:
    """Python's sqlite3 opens a transaction only before a data-changing statement: a SAVEPOINT
    sent first would open one of its own, and releasing it would commit, so a rollback later in
    the same SQLAlchemy transaction would keep what the savepoint wrote (a partial write).
    Begin first, as the driver would have (deferred), so the savepoint nests in the transaction
    and commit or rollback covers it. tests/integration/test_db_savepoints.py."""
    dbapi = conn.connection.dbapi_connection
    if dbapi is not None and not dbapi.in_transaction:
        conn.exec_driver_sql("BEGIN")


def _alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


def migrate(engine: Engine, revision: str = "head") -> None:
    """Bring the database up to the newest schema; a no-op when it already is. ``revision``:
    up to that one only (a data migration's test writes the rows it carries over first)."""
    config = _alembic_config()
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)


def check_schema(engine: Engine) -> None:
    """Raise ``SchemaOutOfDate`` unless the database is at the newest migration."""
    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    with engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_revision()
    if current != head:
        raise SchemaOutOfDate(
            f"database schema is at {current or 'nothing'}, this giftwave needs {head}: "
            "run `giftwave migrate`"
        )
