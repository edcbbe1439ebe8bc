"""Gifted subscriptions (docs/economy.md, "Gifted subscriptions"): a viewer's purchase of K
subscriptions in a live room (written with its transfers), each recipient's gifted period,
the viewers who opted out of receiving one, who has each room open (every node's sockets), and
the economy report's subscription counters.

Revision ID: 0026
Revises: 0025
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None

# The economy report's subscription figures (docs/analytics.md), per day.
ECONOMY_COUNTERS = (
    "subscription_coins",
    "subscriptions",
    "subscription_diamonds",
    "gifted_subscription_coins",
    "gifted_subscriptions",
)


def upgrade() -> None:
    op.create_table(
        "subscription_gifts",
        sa.Column("buyer_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("idempotency_key", sa.String(64), primary_key=True),
        sa.Column("stream_id", sa.String(24), nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("price_coins", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
        sa.Column("recipients", sa.Text, nullable=False),
        sa.Column("transfer_id", sa.String(128), nullable=False, unique=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index(
        "ix_subscription_gifts_creator_time", "subscription_gifts", ["creator_id", "created_at_us"]
    )
    op.create_table(
        "subscription_gift_recipients",
        sa.Column("buyer_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("idempotency_key", sa.String(64), primary_key=True),
        sa.Column("recipient_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("subscription_id", sa.BigInteger, nullable=False),
        sa.Column("period", sa.Integer, nullable=False),
        sa.Column("applied_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "gifted_sub_optouts",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "room_viewers",
        sa.Column("stream_id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("seen_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_room_viewers_seen", "room_viewers", ["seen_at_us"])
    with op.batch_alter_table("subscription_periods") as batch:
        batch.add_column(sa.Column("gifted_by", sa.BigInteger, nullable=True))
    with op.batch_alter_table("analytics_economy_days") as batch:
        for name in ECONOMY_COUNTERS:
            batch.add_column(sa.Column(name, sa.BigInteger, nullable=False, server_default="0"))


def downgrade() -> None:
    with op.batch_alter_table("analytics_economy_days") as batch:
        for name in ECONOMY_COUNTERS:
            batch.drop_column(name)
    with op.batch_alter_table("subscription_periods") as batch:
        batch.drop_column("gifted_by")
    op.drop_index("ix_room_viewers_seen", "room_viewers")
    op.drop_table("room_viewers")
    op.drop_table("gifted_sub_optouts")
    op.drop_table("subscription_gift_recipients")
    op.drop_index("ix_subscription_gifts_creator_time", "subscription_gifts")
    op.drop_table("subscription_gifts")
