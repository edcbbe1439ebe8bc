"""PostgreSQL ledger store (psycopg 3): arrays for lookups, COPY for inserts, one UPDATE.

Every writer of balances takes the chain head row first (``FOR UPDATE``), so writers in
different processes take turns and never deadlock; account rows are then updated in
account-id order by one statement.

Round trips: each is a wake-up of the server's backend, and on a loaded machine a wait for a
core. ``BEGIN`` goes with the head's lock in one simple-protocol string; the balance UPDATE,
the batch record and the head's update are one statement (data-modifying CTEs); then the COPY
and the ``COMMIT``. Five round trips a batch where there were eight (docs/benchmarks.md).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any, ClassVar

import psycopg
from psycopg import errors

from giftwave.ledger.annex import AnnexTable, AnnexUpdate, upsert_clause
from giftwave.ledger.model import StoredTransfer
from giftwave.ledger.planner import AccountDelta, AccountState, Row
from giftwave.ledger.store import (
    ACCOUNT_STATE_SELECT,
    EXPIRED_PENDING_SQL,
    TRANSFER_SELECT,
    Head,
    LedgerStore,
)

COPY_TRANSFERS_SQL = (
    "COPY transfers (seq, id, debit_account_id, credit_account_id, amount, asset, code, kind,"
    " pending_id, reverses_id, timeout_s, expires_at_us, batch_seq, created_at_us) FROM STDIN"
)
UPDATE_ACCOUNTS_SQL = (
    "UPDATE accounts AS a SET debits_pending = a.debits_pending + v.dp,"
    " debits_posted = a.debits_posted + v.dpo, credits_pending = a.credits_pending + v.cp,"
    " credits_posted = a.credits_posted + v.cpo"
    " FROM unnest(%s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[], %s::bigint[])"
    " AS v(id, dp, dpo, cp, cpo) WHERE a.id = v.id"
)
# No parameters: psycopg sends it with the simple query protocol, both statements at once.
BEGIN_AND_LOCK_HEAD_SQL = (
    "BEGIN; SELECT batch_seq, transfer_seq, hash, accounts_version FROM ledger_head"
    " WHERE id = 1 FOR UPDATE"
)
# The balances, the batch record and the head in one statement: a CTE that modifies data runs
# whether or not anything reads it, and a CHECK violation in it aborts the statement as before.
WRITE_BATCH_SQL = (
    f"WITH balances AS ({UPDATE_ACCOUNTS_SQL}), batch AS (INSERT INTO ledger_batches"
    " (seq, first_transfer_seq, transfer_count, prev_hash, hash, created_at_us)"
    " VALUES (%s, %s, %s, %s, %s, %s))"
    " UPDATE ledger_head SET batch_seq = %s, transfer_seq = %s, hash = %s WHERE id = 1"
)


@cache
def _annex_sql(table: AnnexTable) -> str:
    """All annex rows in one statement: one array per column, unnested into rows."""
    arrays = ", ".join(f"%s::{kind}[]" for _, kind in table.columns)
    columns = ", ".join(table.column_names)
    return (
        f"INSERT INTO {table.table_name} ({columns})"
        f" SELECT * FROM unnest({arrays}){upsert_clause(table)}"
    )


class PostgresLedgerStore(LedgerStore):
    # A replayed id, or another process inserting the same id or resolving the same pending
    # transfer between our read and our insert: the unique constraint caught it; plan again.
    duplicate_errors: ClassVar[tuple[type[BaseException], ...]] = (errors.UniqueViolation,)
    retryable_errors: ClassVar[tuple[type[BaseException], ...]] = (
        errors.CheckViolation,  # a stale cached balance met the no-overdraft CHECK: re-read
        errors.SerializationFailure,
        errors.DeadlockDetected,
    )

    def __init__(self, url: str) -> None:
        super().__init__()
        self._url = url
        self._db = self._connect()
        # The batch's balance deltas, written with its batch record by ``_append_batch``.
        self._deltas: list[list[int]] = []

    def _connect(self) -> psycopg.Connection[Any]:
        return psycopg.connect(self._url, autocommit=True)

    def close(self) -> None:
        self._db.close()

    def _begin(self) -> None:
        # BEGIN itself goes with the head's lock (``_lock_head``): one round trip for both.
        if self._db.closed or self._db.broken:
            self._db = self._connect()
        self._deltas = []  # nothing of a failed batch's

    def _commit(self) -> None:
        self._db.execute("COMMIT")

    def _rollback(self) -> None:
        if not (self._db.closed or self._db.broken):
            self._db.execute("ROLLBACK")

    def _lock_head(self) -> Head:
        cursor = self._db.execute(BEGIN_AND_LOCK_HEAD_SQL)
        cursor.nextset()  # past BEGIN's result, to the SELECT's
        row = cursor.fetchone()
        assert row is not None, "ledger_head is seeded by the first migration"
        return Head(*row)

    def _fetch_transfers(self, ids: Iterable[str]) -> dict[str, StoredTransfer]:
        rows = self._db.execute(f"{TRANSFER_SELECT} WHERE id = ANY(%s)", (list(ids),))
        return {row[1]: StoredTransfer(*row) for row in rows}

    def _fetch_resolutions(self, pending_ids: Iterable[str]) -> dict[str, str]:
        rows = self._db.execute(
            "SELECT pending_id, kind FROM transfers WHERE pending_id = ANY(%s)",
            (list(pending_ids),),
        )
        return {str(row[0]): str(row[1]) for row in rows}

    def _fetch_accounts(self, account_ids: list[int]) -> list[AccountState]:
        rows = self._db.execute(f"{ACCOUNT_STATE_SELECT} WHERE id = ANY(%s)", (account_ids,))
        return [AccountState(*row) for row in rows]

    def _insert_transfers(self, rows: list[Row]) -> None:
        with self._db.cursor() as cursor, cursor.copy(COPY_TRANSFERS_SQL) as copy:
            for row in rows:
                copy.write_row(row)

    def _insert_annex_rows(self, table: AnnexTable, rows: list[tuple[object, ...]]) -> None:
        self._db.execute(_annex_sql(table), [list(column) for column in zip(*rows, strict=True)])

    def _update_annex_rows(self, update: AnnexUpdate, keys: list[str], now_us: int) -> None:
        if update.record is not None:  # before the change: its condition still holds
            self._db.execute(
                update.record_sql("= ANY(%s)", "= ANY(%s)", "%s"),
                (now_us, keys, list(update.from_values)),
            )
        self._db.execute(
            f"UPDATE {update.table} SET {update.column} = %s WHERE {update.key} = ANY(%s)"
            f" AND {update.column} = ANY(%s)",
            (update.to_value, keys, list(update.from_values)),
        )

    def _update_accounts(self, deltas: list[AccountDelta]) -> None:
        # Written by ``_append_batch``, which the store calls next, in the same statement.
        columns = list(zip(*deltas, strict=True)) if deltas else [(), (), (), (), ()]
        self._deltas = [list(column) for column in columns]

    def _append_batch(self, head: Head, new_head: Head, count: int, now_us: int) -> None:
        deltas, self._deltas = self._deltas, []
        assert deltas, "_update_accounts comes first"
        self._db.execute(
            WRITE_BATCH_SQL,
            (
                *deltas,
                *(new_head.batch_seq, head.transfer_seq + 1, count, head.hash, new_head.hash),
                now_us,
                *(new_head.batch_seq, new_head.transfer_seq, new_head.hash),
            ),
        )

    def _expired_pending(self, now_us: int, limit: int) -> list[tuple[str, str]]:
        sql = EXPIRED_PENDING_SQL.format(now=int(now_us), limit=int(limit))
        return [(str(row[0]), str(row[1])) for row in self._db.execute(sql)]
