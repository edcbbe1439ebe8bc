"""SQLAlchemy Core tables: the schema as the code sees it (migrations create it)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Column,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    text,
)

metadata = MetaData()

# SQLite makes only an INTEGER PRIMARY KEY the rowid alias; PostgreSQL wants 64 bits.
Id64 = BigInteger().with_variant(Integer(), "sqlite")

accounts = Table(
    "accounts",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("asset", String(8), nullable=False),
    Column("owner", String(128), nullable=False, server_default=""),
    Column("flags", Integer, nullable=False, server_default="0"),
    Column("debits_pending", BigInteger, nullable=False, server_default="0"),
    Column("debits_posted", BigInteger, nullable=False, server_default="0"),
    Column("credits_pending", BigInteger, nullable=False, server_default="0"),
    Column("credits_posted", BigInteger, nullable=False, server_default="0"),
    Column("created_at_us", BigInteger, nullable=False),
    # The database itself refuses an overdraft, whatever a writer believed the balance was.
    CheckConstraint(
        "(flags & 1) = 0 OR debits_posted + debits_pending <= credits_posted",
        name="ck_accounts_no_overdraft",
    ),
)

# seq is assigned by the writer holding the chain head, so it is gap-free and ordered like
# the chain; the client's id is the idempotency key, enforced by its unique constraint.
transfers = Table(
    "transfers",
    metadata,
    Column("seq", Id64, primary_key=True, autoincrement=False),
    Column("id", String(128), nullable=False, unique=True),
    Column("debit_account_id", BigInteger, nullable=False),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("asset", String(8), nullable=False),
    Column("code", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("pending_id", String(128), nullable=True),
    Column("reverses_id", String(128), nullable=True),
    Column("timeout_s", Integer, nullable=False),
    Column("expires_at_us", BigInteger, nullable=True),
    Column("batch_seq", BigInteger, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)
# At most one post or void per pending transfer, even across processes. Partial: gifts carry
# no pending_id and should not pay for an index entry.
Index(
    "ux_transfers_pending_id",
    transfers.c.pending_id,
    unique=True,
    postgresql_where=text("pending_id IS NOT NULL"),
    sqlite_where=text("pending_id IS NOT NULL"),
)
Index(
    "ix_transfers_pending_expiry",
    transfers.c.expires_at_us,
    postgresql_where=text("kind = 'pending'"),
    sqlite_where=text("kind = 'pending'"),
)

ledger_batches = Table(
    "ledger_batches",
    metadata,
    Column("seq", Id64, primary_key=True, autoincrement=False),
    Column("first_transfer_seq", BigInteger, nullable=False),
    Column("transfer_count", Integer, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

# One row: the end of the chain. Locking it serializes batch commits across processes, which
# the chain needs anyway (each batch names the one before it).
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("batch_seq", BigInteger, nullable=False),
    Column("transfer_seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    # Bumped by every flag change (freeze), which also holds this row: see ledger/store.py.
    Column("accounts_version", BigInteger, nullable=False, server_default="0"),
)
