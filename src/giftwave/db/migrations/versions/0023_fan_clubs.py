"""Fan clubs: a creator's club (name, entry gift, chat mode) and its members' points
(social/clubs.py, docs/community.md).

Revision ID: 0023
Revises: 0022
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0023"
down_revision = "0022"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "fan_clubs",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("name", sa.String(24), nullable=False),
        sa.Column("entry_gift_id", sa.String(32), nullable=True),
        sa.Column("chat_mode", sa.String(16), nullable=False, server_default="everyone"),
        sa.Column("chat_min_level", sa.Integer, nullable=False, server_default="1"),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "fan_club_members",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("entry_send_id", sa.String(128), nullable=True),
        sa.Column("active", sa.Boolean, nullable=False, server_default=sa.text("true")),
        sa.Column("gift_coins", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("likes", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("watch_s", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("points", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("joined_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_seen_at_us", sa.BigInteger, nullable=False),
        sa.Column("watched_at_us", sa.BigInteger, nullable=False, server_default="0"),
        sa.Index("ix_fan_club_members_points", "creator_id", "points"),
        sa.Index("ix_fan_club_members_user", "user_id"),
    )


def downgrade() -> None:
    op.drop_table("fan_club_members")
    op.drop_table("fan_clubs")
