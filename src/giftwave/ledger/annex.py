"""Annex rows: one row of a known table, written in the transaction of a submission's transfers.

    await engine.submit(pair, annex=(GIFT_SENDS.name, row))

A gift is two transfers and a ``gift_sends`` row saying what they were for. The store writes
the row in the batch's transaction, and only when every transfer of its submission is newly
committed (``ok``; not ``exists``, not failed). So the row is there exactly when the transfers
are, whatever instant a crash comes, and one writer (the ledger's) holds the database's write
lock for both: no second transaction per gift.

Only tables named here can be annexed, and a row is a plain tuple in the table's column order:
cheap to send to a writer process, and no SQL is ever built from what a caller sends.

A submission that carries an annex is one idempotent unit: either all of its transfers are new
or all are replays. If some already exist and others would be new (the same key with a
different set of transfers), nothing of it commits and the existing ones answer
``id_reused_with_different_fields`` (see ``plan_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

ColumnType = Literal["bigint", "text"]
# (table name, the row's values in that table's ``columns`` order)
Annex = tuple[str, tuple[object, ...]]


@dataclass(frozen=True, slots=True)
class AnnexTable:
    name: str
    columns: tuple[tuple[str, ColumnType], ...]  # insert order, with the type of each value
    # The unique key of the row. A row already there with this key was left by an older
    # version that wrote it before the transfers (an intent whose transfers never committed,
    # since ours are new): it never counted, so the new row replaces it.
    key: tuple[str, ...]

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)

    @property
    def replaced_columns(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns if name not in self.key)


GIFT_SENDS: Final = AnnexTable(
    name="gift_sends",
    columns=(
        ("sender_id", "bigint"),
        ("idempotency_key", "text"),
        ("stream_id", "text"),
        ("creator_id", "bigint"),
        ("gift_id", "text"),
        ("gift_version", "bigint"),
        ("count", "bigint"),
        ("coins", "bigint"),
        ("diamonds", "bigint"),
        ("transfer_id", "text"),
        ("created_at_us", "bigint"),
    ),
    key=("sender_id", "idempotency_key"),
)

ANNEX_TABLES: Final[dict[str, AnnexTable]] = {GIFT_SENDS.name: GIFT_SENDS}


def check_annex(annex: Annex) -> None:
    """Refuse an annex for a table not registered here, or of the wrong width."""
    table = ANNEX_TABLES.get(annex[0])
    if table is None:
        raise ValueError(f"no annex table {annex[0]!r}")
    if len(annex[1]) != len(table.columns):
        raise ValueError(f"an annex row of {table.name} has {len(table.columns)} values")


def upsert_clause(table: AnnexTable) -> str:
    """The ``ON CONFLICT`` clause both SQLite and PostgreSQL understand."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in table.replaced_columns)
    return f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}"
