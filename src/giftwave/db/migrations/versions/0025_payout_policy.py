"""The payout policy, fees and checks (docs/economy.md, "Who approves a payout" and "Fees"):
every decision on a payout with its reasons, the risk flags a policy reads, when a payout was
returned, the provider's fee and a flag for a transfer event that does not match its payout,
what each transfer event said it moved, the sandbox provider's fee, and indexes for the
policy's and the diamond fraction loop's reads.

Revision ID: 0025
Revises: 0024
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "payout_decisions",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("payout_id", sa.String(40), nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("reviewer_id", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reasons", sa.String(500), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("decided_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("payout_id", "actor", name="uq_payout_decisions_actor"),
        sa.CheckConstraint(
            "actor IN ('policy', 'admin', 'operator')", name="ck_payout_decisions_actor"
        ),
        sa.CheckConstraint(
            "outcome IN ('approve', 'review', 'reject')", name="ck_payout_decisions_outcome"
        ),
    )
    op.create_index("ix_payout_decisions_time", "payout_decisions", ["decided_at_us"])
    op.create_table(
        "risk_flags",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("opened_by", sa.BigInteger, nullable=True),
        sa.Column("opened_at_us", sa.BigInteger, nullable=False),
        sa.Column("closed_by", sa.BigInteger, nullable=True),
        sa.Column("closed_at_us", sa.BigInteger, nullable=True),
    )
    op.create_index(
        "ix_risk_flags_open",
        "risk_flags",
        ["user_id"],
        postgresql_where=sa.text("closed_at_us IS NULL"),
        sqlite_where=sa.text("closed_at_us IS NULL"),
    )
    op.add_column("payouts", sa.Column("returned_at_us", sa.BigInteger, nullable=True))
    op.add_column("payouts", sa.Column("fee_minor", sa.BigInteger, nullable=True))
    op.add_column("payouts", sa.Column("flag", sa.String(255), nullable=True))
    op.add_column("payout_events", sa.Column("amount_minor", sa.BigInteger, nullable=True))
    op.add_column("payout_events", sa.Column("currency", sa.String(3), nullable=True))
    op.add_column("payout_events", sa.Column("fee_minor", sa.BigInteger, nullable=True))
    op.add_column(
        "sandbox_payout_transfers",
        sa.Column("fee_minor", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_index(
        "ix_gift_sends_reversed",
        "gift_sends",
        ["creator_id"],
        postgresql_where=sa.text("reversed"),
        sqlite_where=sa.text("reversed"),
    )
    op.create_index("ix_accounts_asset", "accounts", ["asset", "id"])


def downgrade() -> None:
    op.drop_index("ix_accounts_asset", "accounts")
    op.drop_index("ix_gift_sends_reversed", "gift_sends")
    with op.batch_alter_table("sandbox_payout_transfers") as batch:
        batch.drop_column("fee_minor")
    with op.batch_alter_table("payout_events") as batch:
        for name in ("fee_minor", "currency", "amount_minor"):
            batch.drop_column(name)
    with op.batch_alter_table("payouts") as batch:
        for name in ("flag", "fee_minor", "returned_at_us"):
            batch.drop_column(name)
    op.drop_index("ix_risk_flags_open", "risk_flags")
    op.drop_table("risk_flags")
    op.drop_index("ix_payout_decisions_time", "payout_decisions")
    op.drop_table("payout_decisions")
