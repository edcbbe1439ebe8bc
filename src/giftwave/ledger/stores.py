"""Choose the ledger store from the database URL: the one place that knows both backends."""

from __future__ import annotations

from giftwave.db.urls import Backend, DatabaseUrl
from giftwave.ledger.store import LedgerStore


def open_store(db: DatabaseUrl) -> LedgerStore:
    if db.backend is Backend.SQLITE:
        from giftwave.ledger.sqlite_store import SqliteLedgerStore

        return SqliteLedgerStore(db.sqlite_path)
    from giftwave.ledger.postgres_store import PostgresLedgerStore

    return PostgresLedgerStore(db.libpq_url)
