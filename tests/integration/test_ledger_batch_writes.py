"""A batch's writes after its transfers (balances, batch record, chain head) go together.

On PostgreSQL they are one statement and BEGIN goes with the head's lock (five round trips a
batch, docs/benchmarks.md); on SQLite they are separate statements in one transaction. Either
way a balance the database refuses (the no-overdraft CHECK) must leave none of them written,
and the batch planned again answers what the stored balance says.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from giftwave.db.urls import Backend, DatabaseUrl
from giftwave.ledger.accounts import get_account, open_account
from giftwave.ledger.model import AccountFlags, Outcome, Transfer, TransferCode
from giftwave.ledger.store import LedgerStore
from giftwave.ledger.stores import open_store
from giftwave.ledger.verify import verify_ledger

GIFT = TransferCode.GIFT
TOPUP = TransferCode.TOPUP


@pytest.fixture
def store(db_url: DatabaseUrl) -> Iterator[LedgerStore]:
    opened = open_store(db_url)
    yield opened
    opened.close()


def _accounts(sa_engine: Engine) -> tuple[int, int, int]:
    with sa_engine.begin() as conn:
        issued = open_account(conn, "platform:coins_issued", "COIN").id
        spent = open_account(conn, "platform:gifts_spent", "COIN").id
        viewer = open_account(conn, "viewer:1:coins", "COIN", flags=AccountFlags.NO_OVERDRAFT).id
    return issued, spent, viewer


def _head_and_batches(sa_engine: Engine) -> tuple[Any, ...]:
    with sa_engine.connect() as conn:
        head = conn.execute(text("SELECT batch_seq, transfer_seq, hash FROM ledger_head")).one()
        batches = conn.execute(text("SELECT COUNT(*) FROM ledger_batches")).scalar_one()
    return (*head, batches)


def test_a_refused_balance_writes_no_batch_record_and_the_replan_answers(
    store: LedgerStore, sa_engine: Engine
) -> None:
    issued, spent, viewer = _accounts(sa_engine)
    assert store.apply_batch([[Transfer("fund", issued, viewer, 100, TOPUP)]], 1) == [[Outcome.OK]]
    before = _head_and_batches(sa_engine)
    assert before[0] == 1  # one batch committed
    assert before[3] == 1  # and its record
    # Spent behind the store's back: its cached 100 coins are stale, so its plan passes and the
    # database's CHECK refuses the balance. Only a test can do this (every real writer takes
    # the head), which is how the refusal path is reached on purpose.
    with sa_engine.begin() as conn:
        conn.execute(text("UPDATE accounts SET debits_posted = 90 WHERE id = :id"), {"id": viewer})
    outcomes = store.apply_batch([[Transfer("gift", viewer, spent, 50, GIFT)]], 2)
    assert outcomes == [[Outcome.INSUFFICIENT_FUNDS]]
    assert _head_and_batches(sa_engine) == before  # no batch record, the head unmoved
    with sa_engine.connect() as conn:
        assert get_account(conn, viewer).debits_posted == 90
        assert get_account(conn, spent).credits_posted == 0
        assert conn.execute(text("SELECT COUNT(*) FROM transfers")).scalar_one() == 1
    # And the next batch builds on the stored balance.
    assert store.apply_batch([[Transfer("gift2", viewer, spent, 10, GIFT)]], 3) == [[Outcome.OK]]
    with sa_engine.connect() as conn:
        assert get_account(conn, viewer).debits_posted == 100
        assert get_account(conn, spent).credits_posted == 10
    assert _head_and_batches(sa_engine)[0] == 2


class _CountingConnection:
    """Counts the statements sent on a psycopg connection (a COPY is one, two round trips)."""

    def __init__(self, conn: Any) -> None:
        self._conn = conn
        self.calls: list[str] = []

    def execute(self, query: Any, *args: Any, **kwargs: Any) -> Any:
        self.calls.append(str(query).split()[0])
        return self._conn.execute(query, *args, **kwargs)

    def cursor(self, *args: Any, **kwargs: Any) -> Any:
        self.calls.append("COPY")
        return self._conn.cursor(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_postgresql_batch_sends_four_statements(
    store: LedgerStore, sa_engine: Engine, db_url: DatabaseUrl
) -> None:
    """Round trips wait for the server's backend to get a core: a batch makes five (BEGIN and
    the head's lock; the COPY's two; balances, batch record and head; COMMIT), not eight.
    SQLite has no round trips: there the batch is only checked to commit."""
    issued, _, viewer = _accounts(sa_engine)
    store.apply_batch([[Transfer("warm", issued, viewer, 1, TOPUP)]], 1)  # accounts cached
    if db_url.backend is Backend.POSTGRESQL:
        counting = _CountingConnection(store._db)  # type: ignore[attr-defined]
        store._db = counting  # type: ignore[attr-defined]
    outcomes = store.apply_batch([[Transfer("t", issued, viewer, 5, TOPUP)]], 2)
    assert outcomes == [[Outcome.OK]]
    if db_url.backend is Backend.POSTGRESQL:
        assert counting.calls == ["BEGIN;", "COPY", "WITH", "COMMIT"]
    with sa_engine.connect() as conn:
        assert get_account(conn, viewer).credits_posted == 6
        assert verify_ledger(conn).ok
