"""Responsible spending (docs/economy.md, "Responsible spending"): a viewer's own limits per
day, week and month (with a raise waiting out its cooling-off) and self-exclusions.

Revision ID: 0030
Revises: 0029
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "spending_limits",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("period", sa.String(8), primary_key=True),
        sa.Column("limit_coins", sa.BigInteger, nullable=True),
        sa.Column("unit", sa.String(8), nullable=False),
        sa.Column("entered", sa.BigInteger, nullable=True),
        sa.Column("pending_coins", sa.BigInteger, nullable=True),
        sa.Column("pending_unit", sa.String(8), nullable=True),
        sa.Column("pending_entered", sa.BigInteger, nullable=True),
        sa.Column("pending_at_us", sa.BigInteger, nullable=True),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint("period IN ('day', 'week', 'month')", name="ck_spending_limits_period"),
    )
    op.create_table(
        "self_exclusions",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("starts_at_us", sa.BigInteger, nullable=False),
        sa.Column("ends_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("self_exclusions")
    op.drop_table("spending_limits")
