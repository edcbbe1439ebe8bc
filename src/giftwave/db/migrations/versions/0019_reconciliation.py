"""Reconciliation (docs/economy.md, "Reconciliation"): the sandbox payment provider's own
record of each payment, and the runs of `giftwave reconcile` the admin console shows.

Revision ID: 0019
Revises: 0018
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "sandbox_payments",
        sa.Column("payment_id", sa.String(40), primary_key=True),
        sa.Column("session_id", sa.String(64), nullable=False, unique=True),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("disputed", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("refunded_at_us", sa.BigInteger, nullable=True),
        sa.Column("disputed_at_us", sa.BigInteger, nullable=True),
    )
    op.create_index("ix_sandbox_payments_time", "sandbox_payments", ["created_at_us"])
    op.create_table(
        "reconcile_runs",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("since_us", sa.BigInteger, nullable=False),
        sa.Column("started_at_us", sa.BigInteger, nullable=False),
        sa.Column("finished_at_us", sa.BigInteger, nullable=False),
        sa.Column("ledger_records", sa.Integer, nullable=False),
        sa.Column("provider_records", sa.Integer, nullable=False),
        sa.Column("mismatch_count", sa.Integer, nullable=False),
        sa.Column("counts_json", sa.Text, nullable=False),
        sa.Column("mismatches_json", sa.Text, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reconcile_runs")
    op.drop_index("ix_sandbox_payments_time", "sandbox_payments")
    op.drop_table("sandbox_payments")
