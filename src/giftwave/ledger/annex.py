"""Annex rows: one row of a known table, written in the transaction of a submission's transfers.

    await engine.submit(pair, annex=(GIFT_SENDS.name, row))

A gift is two transfers and a ``gift_sends`` row saying what they were for. The store writes
the row in the batch's transaction, and only when every transfer of its submission is newly
committed (``ok``; not ``exists``, not failed). So the row is there exactly when the transfers
are, whatever instant a crash comes, and one writer (the ledger's) holds the database's write
lock for both: no second transaction per gift.

Only tables named here can be annexed, and a row is a plain tuple in the table's column order:
cheap to send to a writer process, and no SQL is ever built from what a caller sends. An
annex may also change one existing row instead (``AnnexUpdate``): the ledger's expiry marks the
payout whose reservation it voided (``expiry_annex``), an operator's reversal marks its gift.

A submission that carries an annex is one idempotent unit: either all of its transfers are new
or all are replays. If some already exist and others would be new (the same key with a
different set of transfers), nothing of it commits and the existing ones answer
``id_reused_with_different_fields`` (see ``plan_batch``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from giftwave.ledger.model import TransferCode

ColumnType = Literal["bigint", "text"]
# What an ``AnnexUpdate`` compares and sets: a status word, or a flag.
UpdateValue = str | bool
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
    # The table written, when it is not ``name``: two annexes may fill different columns of
    # one table (a gift with a paid message writes its row with the message's columns too).
    table: str = ""

    @property
    def table_name(self) -> str:
        return self.table or self.name

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

# A gift that carries a paid highlighted message: the same row, with the message's columns.
# Only those gifts name it, so a plain gift's insert stays the one above.
GIFT_SENDS_MESSAGE: Final = AnnexTable(
    name="gift_sends_message",
    columns=(
        *GIFT_SENDS.columns,
        ("message", "text"),
        ("message_tier", "bigint"),
        ("message_colour", "text"),
        ("message_pinned_until_us", "bigint"),
    ),
    key=GIFT_SENDS.key,
    table=GIFT_SENDS.name,
)

# A subscription's charged period (economy/subscriptions.py): there exactly when it was paid.
SUBSCRIPTION_PERIODS: Final = AnnexTable(
    name="subscription_periods",
    columns=(
        ("subscription_id", "bigint"),
        ("period", "bigint"),
        ("subscriber_id", "bigint"),
        ("creator_id", "bigint"),
        ("coins", "bigint"),
        ("diamonds", "bigint"),
        ("transfer_id", "text"),
        ("starts_at_us", "bigint"),
        ("ends_at_us", "bigint"),
        ("created_at_us", "bigint"),
    ),
    key=("subscription_id", "period"),
)

# A viewer's gifted subscriptions (economy/subscription_gifts.py): there exactly when the one
# chain paying every recipient's period committed. ``recipients``: their ids, comma separated.
SUBSCRIPTION_GIFTS: Final = AnnexTable(
    name="subscription_gifts",
    columns=(
        ("buyer_id", "bigint"),
        ("idempotency_key", "text"),
        ("stream_id", "text"),
        ("creator_id", "bigint"),
        ("count", "bigint"),
        ("price_coins", "bigint"),
        ("coins", "bigint"),
        ("diamonds", "bigint"),
        ("recipients", "text"),
        ("transfer_id", "text"),
        ("created_at_us", "bigint"),
    ),
    key=("buyer_id", "idempotency_key"),
)

ANNEX_TABLES: Final[dict[str, AnnexTable]] = {
    GIFT_SENDS.name: GIFT_SENDS,
    GIFT_SENDS_MESSAGE.name: GIFT_SENDS_MESSAGE,
    SUBSCRIPTION_PERIODS.name: SUBSCRIPTION_PERIODS,
    SUBSCRIPTION_GIFTS.name: SUBSCRIPTION_GIFTS,
}


@dataclass(frozen=True, slots=True)
class AnnexRecord:
    """A row written into ``table`` for each row an ``AnnexUpdate`` changes, in the same
    transaction: ``copied`` columns from the changed row, ``constants``, and ``time_column``
    the batch's time. Its unique key makes a second one nothing (``ON CONFLICT DO NOTHING``)."""

    table: str
    copied: tuple[tuple[str, str], ...]  # (its column, the changed row's column)
    constants: tuple[tuple[str, str], ...]  # (its column, the value)
    time_column: str


@dataclass(frozen=True, slots=True)
class AnnexUpdate:
    """An existing row changed, not a row inserted: in ``table``, the row whose ``key`` column
    is the annex's one value has ``column`` set to ``to_value``, if it still holds one of
    ``from_values`` (a row already moved on is left alone; none there changes nothing); and
    ``record`` written beside each row changed, when given."""

    name: str  # what a submission names, like a table
    table: str
    key: str
    column: str
    from_values: tuple[UpdateValue, ...]
    to_value: UpdateValue
    record: AnnexRecord | None = None

    def record_sql(self, key_is: str, from_in: str, time: str) -> str:
        """The INSERT … SELECT of ``record`` for the rows about to change, in a dialect's
        placeholders: ``key_is`` and ``from_in`` the conditions' right-hand sides."""
        record = self.record
        assert record is not None
        names = [c for c, _ in record.copied] + [c for c, _ in record.constants]
        values = [src for _, src in record.copied] + [
            "'" + value.replace("'", "''") + "'" for _, value in record.constants
        ]
        return (
            f"INSERT INTO {record.table} ({', '.join([*names, record.time_column])})"
            f" SELECT {', '.join([*values, time])} FROM {self.table}"
            f" WHERE {self.key} {key_is} AND {self.column} {from_in} ON CONFLICT DO NOTHING"
        )


# The pending transfer that reserves a payout's diamonds has this id prefix, then the payout id
# (economy/payouts.py names them with it).
PAYOUT_PENDING_PREFIX: Final = "payout:"

# A payout whose reservation the ledger's expiry voids says so in the void's own transaction:
# the row can never show "pending" (nor count to the daily cap) for diamonds the ledger gave
# back, whichever process swept, and a crash cannot fall between the two. "requested": the
# reservation committed but the process died before it marked the row pending. The decision
# that ended it is recorded in the same transaction, like every other decision on a payout
# (economy/payout_decisions.py): giftwave's own (actor ``system``), nobody reviewed it in time.
PAYOUT_EXPIRED_DECISION: Final = AnnexRecord(
    table="payout_decisions",
    copied=(("payout_id", "id"), ("creator_id", "creator_id")),
    constants=(("actor", "system"), ("outcome", "expire"), ("reasons", "review_timeout")),
    time_column="decided_at_us",
)
PAYOUT_EXPIRED: Final = AnnexUpdate(
    name="payout_expired",
    table="payouts",
    key="id",
    column="status",
    from_values=("requested", "pending"),
    to_value="expired",
    record=PAYOUT_EXPIRED_DECISION,
)

# A gift an operator reverses is marked in the reversal's own transaction (``gift_sends`` keyed
# by its coins transfer): whoever reads the gift (a room rebuilt from the database, a goal's or
# a battle's committed coins, a statement) sees it reversed exactly when the ledger has the
# reversal, never in between, whatever instant a crash comes.
GIFT_REVERSED: Final = AnnexUpdate(
    name="gift_reversed",
    table="gift_sends",
    key="transfer_id",
    column="reversed",
    from_values=(False,),
    to_value=True,
)

ANNEX_UPDATES: Final[dict[str, AnnexUpdate]] = {
    PAYOUT_EXPIRED.name: PAYOUT_EXPIRED,
    GIFT_REVERSED.name: GIFT_REVERSED,
}


def expiry_annex(pending_id: str, code: str) -> Annex | None:
    """What else a void by expiry changes, in its transaction: a payout's row says expired."""
    if code == TransferCode.PAYOUT and pending_id.startswith(PAYOUT_PENDING_PREFIX):
        return (PAYOUT_EXPIRED.name, (pending_id.removeprefix(PAYOUT_PENDING_PREFIX),))
    return None


def check_annex(annex: Annex) -> None:
    """Refuse an annex for a table not registered here, or of the wrong width."""
    update = ANNEX_UPDATES.get(annex[0])
    if update is not None:
        if len(annex[1]) != 1:
            raise ValueError(f"an annex of {update.name} has 1 value, the row's {update.key}")
        return
    table = ANNEX_TABLES.get(annex[0])
    if table is None:
        raise ValueError(f"no annex table {annex[0]!r}")
    if len(annex[1]) != len(table.columns):
        raise ValueError(f"an annex row of {table.name} has {len(table.columns)} values")


def upsert_clause(table: AnnexTable) -> str:
    """The ``ON CONFLICT`` clause both SQLite and PostgreSQL understand."""
    updates = ", ".join(f"{name} = excluded.{name}" for name in table.replaced_columns)
    return f" ON CONFLICT ({', '.join(table.key)}) DO UPDATE SET {updates}"
