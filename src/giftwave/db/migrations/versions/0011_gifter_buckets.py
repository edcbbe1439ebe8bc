"""Gifters counted in buckets of their net coins, for the economy's concentration figures.

Filled from the existing per-gifter totals, so the report stays in step with the rollups.

Revision ID: 0011
Revises: 0010
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from giftwave.analytics.rollup import rebuild_gifter_buckets

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "analytics_gifter_buckets",
        sa.Column("coins_from", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("gifters", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
    )
    rebuild_gifter_buckets(op.get_bind())


def downgrade() -> None:
    op.drop_table("analytics_gifter_buckets")
