"""Subscriptions (docs/economy.md, "Subscriptions"): creators' monthly prices, the
subscriptions, and each charged period (written with its transfers).

Revision ID: 0022
Revises: 0021
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "subscription_prices",
        sa.Column("creator_id", sa.BigInteger, primary_key=True),
        sa.Column("price_coins", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "subscriptions",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("subscriber_id", sa.BigInteger, nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("price_coins", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("period", sa.Integer, nullable=False),
        sa.Column("paid_until_us", sa.BigInteger, nullable=False),
        sa.Column("next_attempt_us", sa.BigInteger, nullable=False),
        sa.Column("grace_until_us", sa.BigInteger, nullable=True),
        sa.Column("last_failure", sa.String(40), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("cancelled_at_us", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("subscriber_id", "creator_id", name="uq_subscriptions_pair"),
    )
    op.create_index("ix_subscriptions_creator", "subscriptions", ["creator_id", "status"])
    op.create_index("ix_subscriptions_due", "subscriptions", ["status", "next_attempt_us"])
    op.create_table(
        "subscription_periods",
        sa.Column("subscription_id", sa.BigInteger, primary_key=True),
        sa.Column("period", sa.Integer, primary_key=True),
        sa.Column("subscriber_id", sa.BigInteger, nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
        sa.Column("transfer_id", sa.String(128), nullable=False, unique=True),
        sa.Column("starts_at_us", sa.BigInteger, nullable=False),
        sa.Column("ends_at_us", sa.BigInteger, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_subscription_periods_creator_time",
        "subscription_periods",
        ["creator_id", "created_at_us"],
    )


def downgrade() -> None:
    op.drop_index("ix_subscription_periods_creator_time", "subscription_periods")
    op.drop_table("subscription_periods")
    op.drop_index("ix_subscriptions_due", "subscriptions")
    op.drop_index("ix_subscriptions_creator", "subscriptions")
    op.drop_table("subscriptions")
    op.drop_table("subscription_prices")
