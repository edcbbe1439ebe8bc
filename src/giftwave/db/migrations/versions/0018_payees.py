"""Payouts through a provider (docs/economy.md, "The flow of money out"): a creator's payee
account at the payout provider, the provider's transfer on each payout, every verified payout
webhook once, and the sandbox provider's own records of its accounts and transfers.

Revision ID: 0018
Revises: 0017
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "payees",
        sa.Column("creator_id", sa.BigInteger, primary_key=True),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("account_id", sa.String(255), nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("requirements_due", sa.String(1000), nullable=False, server_default=""),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
        sa.Column("version", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("provider", "account_id", name="uq_payees_account"),
        sa.CheckConstraint(
            "state IN ('pending', 'verified', 'restricted', 'disabled')", name="ck_payees_state"
        ),
    )
    # Plain ADD COLUMNs (nullable, or with a default): both backends take them in place.
    op.add_column("payouts", sa.Column("provider", sa.String(16), nullable=True))
    op.add_column("payouts", sa.Column("provider_transfer_id", sa.String(255), nullable=True))
    op.add_column("payouts", sa.Column("provider_reason", sa.String(255), nullable=True))
    op.add_column(
        "payouts",
        sa.Column("transfer_attempts", sa.Integer, nullable=False, server_default="0"),
    )
    op.add_column("payouts", sa.Column("processing_since_us", sa.BigInteger, nullable=True))
    op.add_column("payouts", sa.Column("payout_currency", sa.String(3), nullable=True))
    op.add_column("payouts", sa.Column("payout_amount_minor", sa.BigInteger, nullable=True))
    op.add_column("payouts", sa.Column("fx_rate_micros", sa.BigInteger, nullable=True))
    op.create_index("ix_payouts_status", "payouts", ["status"])
    op.create_table(
        "payout_events",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("payout_id", sa.String(40), nullable=False, index=True),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("transfer_id", sa.String(255), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sandbox_payee_accounts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False, unique=True),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("details_submitted", sa.Boolean, nullable=False),
        sa.Column("payouts_enabled", sa.Boolean, nullable=False),
        sa.Column("requirements_due", sa.String(1000), nullable=False),
        sa.Column("disabled_reason", sa.String(255), nullable=True),
        sa.Column("bank", sa.String(16), nullable=False),
        sa.Column("version", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sandbox_payout_transfers",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False, unique=True),
        sa.Column("account_id", sa.String(40), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(255), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("sandbox_payout_transfers")
    op.drop_table("sandbox_payee_accounts")
    op.drop_table("payout_events")
    op.drop_index("ix_payouts_status", "payouts")
    with op.batch_alter_table("payouts") as batch:
        for name in (
            "fx_rate_micros",
            "payout_amount_minor",
            "payout_currency",
            "processing_since_us",
            "transfer_attempts",
            "provider_reason",
            "provider_transfer_id",
            "provider",
        ):
            batch.drop_column(name)
    op.drop_table("payees")
