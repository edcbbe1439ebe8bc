"""Follows: who follows whom, for "K of the people you follow are watching".

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "follows",
        sa.Column("follower_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("followee_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_follows_followee", "followee_id"),
    )


def downgrade() -> None:
    op.drop_table("follows")
