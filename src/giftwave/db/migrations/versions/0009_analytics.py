"""Economy health analytics: rollups of the ledger, read by the analytics API and pages.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_watermarks",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "analytics_stream_minutes",
        sa.Column("stream_id", sa.String(24), primary_key=True),
        sa.Column("minute_us", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("gifts", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
        # The largest single send (count) in the minute: a combo shows here.
        sa.Column("max_count", sa.Integer, nullable=False),
    )
    op.create_table(
        "analytics_stream_gifters",
        sa.Column("stream_id", sa.String(24), primary_key=True),
        sa.Column("sender_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("gifts", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "analytics_stream_viewers",
        sa.Column("stream_id", sa.String(24), primary_key=True),
        sa.Column("minute_us", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("viewers", sa.Integer, nullable=False),
    )
    op.create_table(
        "analytics_creator_days",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("gifts", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "analytics_creators",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("gifts", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
        sa.Index("ix_analytics_creators_diamonds", "diamonds"),
    )
    op.create_table(
        "analytics_creator_gifters",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("sender_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("gifts", sa.BigInteger, nullable=False),
        sa.Column("first_day", sa.Integer, nullable=False),
        sa.Column("last_day", sa.Integer, nullable=False),
        sa.Index("ix_analytics_creator_gifters_coins", "creator_id", "coins"),
    )
    op.create_table(
        "analytics_gifters",
        sa.Column("sender_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("gifts", sa.BigInteger, nullable=False),
        sa.Column("first_day", sa.Integer, nullable=False),
        sa.Column("last_day", sa.Integer, nullable=False),
        sa.Index("ix_analytics_gifters_coins", "coins"),
    )
    op.create_table(
        "analytics_gifter_weeks",
        sa.Column("sender_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("week", sa.Integer, primary_key=True, autoincrement=False),
    )
    op.create_table(
        "analytics_cohort_weeks",
        sa.Column("cohort_week", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("week", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("gifters", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "analytics_economy_days",
        sa.Column("day", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("coins_sold", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("topups", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("coins_granted", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("coins_spent", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("gifts", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("coins_reversed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("gift_reversals", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("coins_refunded", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("refunds", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("coins_charged_back", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("chargebacks", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("diamonds_earned", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("diamonds_reversed", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("diamonds_paid_out", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("payouts", sa.BigInteger, nullable=False, server_default="0"),
    )


def downgrade() -> None:
    op.drop_table("analytics_economy_days")
    op.drop_table("analytics_cohort_weeks")
    op.drop_table("analytics_gifter_weeks")
    op.drop_table("analytics_gifters")
    op.drop_table("analytics_creator_gifters")
    op.drop_table("analytics_creators")
    op.drop_table("analytics_creator_days")
    op.drop_table("analytics_stream_viewers")
    op.drop_table("analytics_stream_gifters")
    op.drop_table("analytics_stream_minutes")
    op.drop_table("analytics_watermarks")
