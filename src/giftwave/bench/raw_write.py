"""The raw write ceiling of ``giftwave bench ledger``: the bench's gifts written by a plain loop.

No rules, no planner, no hash chain, no futures: for each batch of the engine's size, the same
transfer rows and one summed balance update per account, then a commit; on PostgreSQL the
store's own COPY and ``unnest`` UPDATE, on SQLite a plain ``executemany`` INSERT and the
store's UPDATE, on a connection set up as the store's (WAL, ``synchronous=FULL``, checkpoints
off the commit path). It runs on its own scratch database, made like the engine's, so the
ledger the engine wrote still verifies; the ratio of the two says what the engine's rules,
planning and chain cost over the database's own work.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Final

from sqlalchemy import update

from giftwave.db.engine import make_engine
from giftwave.db.tables import accounts
from giftwave.db.urls import Backend, DatabaseUrl
from giftwave.ledger.model import TransferCode
from giftwave.ledger.planner import AccountDelta, Row

GIFT: Final = str(TransferCode.GIFT)
_SQLITE_INSERT: Final = (
    "INSERT INTO transfers (seq, id, debit_account_id, credit_account_id, amount, asset, code,"
    " kind, pending_id, reverses_id, timeout_s, expires_at_us, batch_seq, created_at_us)"
    " VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)"
)


def fund(db: DatabaseUrl, viewer_ids: list[int], issued_id: int, coins: int) -> None:
    """Credit every viewer ``coins`` directly (the no-overdraft CHECK holds; no transfer rows:
    this database is never verified)."""
    engine = make_engine(db)
    with engine.begin() as conn:
        conn.execute(
            update(accounts)
            .where(accounts.c.id.between(viewer_ids[0], viewer_ids[-1]))
            .values(credits_posted=coins)
        )
        conn.execute(
            update(accounts)
            .where(accounts.c.id == issued_id)
            .values(debits_posted=coins * len(viewer_ids))
        )
    engine.dispose()


class RawWriter:
    """Writes gifts (two transfers each) to one creator in batches of ``batch_transfers``."""

    def __init__(
        self,
        db: DatabaseUrl,
        *,
        viewer_ids: list[int],
        spent_id: int,
        diamonds_issued_id: int,
        creator_id: int,
        batch_transfers: int,
        amount: int,
    ) -> None:
        self.db = db
        self.viewer_ids = viewer_ids
        self.spent_id, self.issued_id, self.creator_id = spent_id, diamonds_issued_id, creator_id
        self.batch_gifts = max(1, batch_transfers // 2)
        self.amount = amount
        self.gifts = 0  # written so far, over every run: ids and seqs go on from here
        self.batches = 0

    def _batch(self) -> tuple[list[Row], list[AccountDelta]]:
        """The next batch's rows and summed deltas (ordered by account id, as the store's)."""
        now_us = time.time_ns() // 1000
        self.batches += 1
        batch, amount, viewers = self.batches, self.amount, self.viewer_ids
        rows: list[Row] = []
        debits: dict[int, int] = {}
        first = self.gifts
        for n in range(first, first + self.batch_gifts):
            viewer = viewers[n % len(viewers)]
            rows.append(
                (2 * n + 1, f"r{n}c", viewer, self.spent_id, amount, "COIN", GIFT, "posted",
                 None, None, 0, None, batch, now_us)
            )  # fmt: skip
            rows.append(
                (2 * n + 2, f"r{n}d", self.issued_id, self.creator_id, amount, "DIAMOND", GIFT,
                 "posted", None, None, 0, None, batch, now_us)
            )  # fmt: skip
            debits[viewer] = debits.get(viewer, 0) + amount
        self.gifts += self.batch_gifts
        total = amount * self.batch_gifts
        debits[self.issued_id] = total
        credits = {self.spent_id: total, self.creator_id: total}
        deltas = [
            (account, 0, debits.get(account, 0), 0, credits.get(account, 0))
            for account in sorted(debits.keys() | credits.keys())
        ]
        return rows, deltas

    def run(self, seconds: float) -> float:
        """Write batches for ``seconds``; gifts committed per second."""
        with self._writer() as write:
            gifts = 0
            start = time.perf_counter()
            while (elapsed := time.perf_counter() - start) < seconds:
                write(*self._batch())
                gifts += self.batch_gifts
            elapsed = time.perf_counter() - start
        return gifts / elapsed

    @contextmanager
    def _writer(self) -> Iterator[Callable[[list[Row], list[AccountDelta]], None]]:
        if self.db.backend is Backend.SQLITE:
            from giftwave.ledger.sqlite_store import (
                CHECKPOINT_INTERVAL_S,
                UPDATE_ACCOUNTS_SQL,
                Checkpointer,
                writer_connection,
            )

            lite = writer_connection(self.db.sqlite_path)
            checkpointer = Checkpointer(self.db.sqlite_path, CHECKPOINT_INTERVAL_S)
            checkpointer.start()

            def write_sqlite(rows: list[Row], deltas: list[AccountDelta]) -> None:
                lite.execute("BEGIN IMMEDIATE")
                lite.executemany(_SQLITE_INSERT, rows)
                lite.executemany(UPDATE_ACCOUNTS_SQL, deltas)
                lite.execute("COMMIT")

            try:
                yield write_sqlite
            finally:
                checkpointer.stop()
                lite.close()
            return

        import psycopg

        from giftwave.ledger.postgres_store import COPY_TRANSFERS_SQL, UPDATE_ACCOUNTS_SQL

        with psycopg.connect(self.db.libpq_url, autocommit=True) as pg:

            def write_postgres(rows: list[Row], deltas: list[AccountDelta]) -> None:
                pg.execute("BEGIN")
                with pg.cursor() as cursor, cursor.copy(COPY_TRANSFERS_SQL) as copy:
                    for row in rows:
                        copy.write_row(row)
                pg.execute(
                    UPDATE_ACCOUNTS_SQL, [list(column) for column in zip(*deltas, strict=True)]
                )
                pg.execute("COMMIT")

            yield write_postgres
