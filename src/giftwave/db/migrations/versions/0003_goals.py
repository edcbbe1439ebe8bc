"""Stream goals: a creator's target (coins of any or one gift, or likes) for a stream.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "stream_goals",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.String(24), nullable=False, index=True),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("gift_id", sa.String(32), nullable=True),
        sa.Column("target", sa.BigInteger, nullable=False),
        sa.Column("title", sa.String(80), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("cleared_at_us", sa.BigInteger, nullable=True),
        sa.CheckConstraint("target > 0", name="ck_stream_goals_target"),
    )


def downgrade() -> None:
    op.drop_table("stream_goals")
