"""Moderation beyond one room: moderators a creator appoints, bans from a creator's rooms,
viewers' reports of chat lines (live/moderation.py).

Revision ID: 0016
Revises: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "room_moderators",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_room_moderators_user", "user_id"),
    )
    op.create_table(
        "room_bans",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("banned_by", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(200), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_room_bans_creator_time", "creator_id", "created_at_us"),
    )
    op.create_table(
        "chat_reports",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.String(24), nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("message_id", sa.String(32), nullable=False),
        sa.Column("reported_user_id", sa.BigInteger, nullable=False),
        sa.Column("reported_handle", sa.String(32), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("reporter_id", sa.BigInteger, nullable=False),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("reporter_id", "stream_id", "message_id", name="uq_chat_reports_once"),
        sa.Index("ix_chat_reports_creator_time", "creator_id", "created_at_us"),
        sa.Index("ix_chat_reports_time", "created_at_us"),
    )


def downgrade() -> None:
    op.drop_table("chat_reports")
    op.drop_table("room_bans")
    op.drop_table("room_moderators")
