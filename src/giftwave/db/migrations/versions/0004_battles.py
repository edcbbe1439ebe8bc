"""Battles: two live streams in a timed match, scored from committed gifts.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "battles",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("stream_a", sa.String(24), nullable=False),
        sa.Column("stream_b", sa.String(24), nullable=False),
        sa.Column("creator_a", sa.BigInteger, nullable=False),
        sa.Column("creator_b", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("duration_s", sa.Integer, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("started_at_us", sa.BigInteger, nullable=True),
        sa.Column("ends_at_us", sa.BigInteger, nullable=True),
        sa.Column("ended_at_us", sa.BigInteger, nullable=True),
        sa.Column("score_a", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("score_b", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("winner", sa.String(4), nullable=True),
        sa.CheckConstraint(
            "status IN ('pending', 'active', 'ended', 'declined', 'expired')",
            name="ck_battles_status",
        ),
        sa.CheckConstraint(
            "stream_a <> stream_b AND creator_a <> creator_b", name="ck_battles_sides"
        ),
        sa.CheckConstraint("duration_s BETWEEN 1 AND 1800", name="ck_battles_duration"),
        sa.CheckConstraint("score_a >= 0 AND score_b >= 0", name="ck_battles_scores"),
        sa.CheckConstraint(
            "status IN ('pending', 'declined', 'expired') OR (started_at_us IS NOT NULL AND "
            "ends_at_us IS NOT NULL AND ends_at_us >= started_at_us)",
            name="ck_battles_started",
        ),
        sa.CheckConstraint(
            "(status = 'ended') = (winner IS NOT NULL) AND (winner IS NULL OR winner IN "
            "('a', 'b', 'draw'))",
            name="ck_battles_winner",
        ),
        sa.CheckConstraint(
            "(status IN ('pending', 'active')) = (ended_at_us IS NULL)", name="ck_battles_ended"
        ),
    )
    op.create_index("ix_battles_stream_a", "battles", ["stream_a", "status"])
    op.create_index("ix_battles_stream_b", "battles", ["stream_b", "status"])
    op.create_index("ix_battles_due", "battles", ["status", "ends_at_us"])


def downgrade() -> None:
    op.drop_table("battles")
