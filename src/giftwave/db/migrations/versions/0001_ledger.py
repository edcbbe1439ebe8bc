"""The ledger: accounts, transfers, the batch hash chain.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(128), nullable=False, unique=True),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("owner", sa.String(128), nullable=False, server_default=""),
        sa.Column("flags", sa.Integer, nullable=False, server_default="0"),
        sa.Column("debits_pending", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("debits_posted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("credits_pending", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("credits_posted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint(
            "(flags & 1) = 0 OR debits_posted + debits_pending <= credits_posted",
            name="ck_accounts_no_overdraft",
        ),
    )
    if op.get_bind().dialect.name == "postgresql":
        # Half-empty pages let PostgreSQL update a balance in place (a HOT update, no index
        # writes): a batch updates thousands of account rows, and this made it 2-3x faster.
        op.execute("ALTER TABLE accounts SET (fillfactor = 50)")
    op.create_table(
        "transfers",
        sa.Column("seq", Id64, primary_key=True, autoincrement=False),
        sa.Column("id", sa.String(128), nullable=False, unique=True),
        sa.Column("debit_account_id", sa.BigInteger, nullable=False),
        sa.Column("credit_account_id", sa.BigInteger, nullable=False),
        sa.Column("amount", sa.BigInteger, nullable=False),
        sa.Column("asset", sa.String(8), nullable=False),
        sa.Column("code", sa.String(16), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("pending_id", sa.String(128), nullable=True),
        sa.Column("reverses_id", sa.String(128), nullable=True),
        sa.Column("timeout_s", sa.Integer, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=True),
        sa.Column("batch_seq", sa.BigInteger, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ux_transfers_pending_id",
        "transfers",
        ["pending_id"],
        unique=True,
        postgresql_where=sa.text("pending_id IS NOT NULL"),
        sqlite_where=sa.text("pending_id IS NOT NULL"),
    )
    op.create_index(
        "ix_transfers_pending_expiry",
        "transfers",
        ["expires_at_us"],
        postgresql_where=sa.text("kind = 'pending'"),
        sqlite_where=sa.text("kind = 'pending'"),
    )
    op.create_table(
        "ledger_batches",
        sa.Column("seq", Id64, primary_key=True, autoincrement=False),
        sa.Column("first_transfer_seq", sa.BigInteger, nullable=False),
        sa.Column("transfer_count", sa.Integer, nullable=False),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    head = op.create_table(
        "ledger_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("batch_seq", sa.BigInteger, nullable=False),
        sa.Column("transfer_seq", sa.BigInteger, nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("accounts_version", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.bulk_insert(
        head,
        [{"id": 1, "batch_seq": 0, "transfer_seq": 0, "hash": "0" * 64, "accounts_version": 0}],
    )


def downgrade() -> None:
    op.drop_table("ledger_head")
    op.drop_table("ledger_batches")
    op.drop_index("ix_transfers_pending_expiry", table_name="transfers")
    op.drop_index("ux_transfers_pending_id", table_name="transfers")
    op.drop_table("transfers")
    op.drop_table("accounts")
