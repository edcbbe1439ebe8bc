"""Sharing: short links, their visits (hashed visitors), attribution, server secrets.

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "share_links",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("code", sa.String(16), nullable=False, unique=True),
        sa.Column("sharer_id", sa.BigInteger, nullable=False),
        sa.Column("target_kind", sa.String(8), nullable=False),
        sa.Column("target_id", sa.String(32), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_shared_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "sharer_id",
            "target_kind",
            "target_id",
            "channel",
            name="uq_share_links_sharer_target",
        ),
        sa.CheckConstraint(
            "target_kind IN ('stream', 'profile', 'clip')", name="ck_share_links_kind"
        ),
        sa.Index("ix_share_links_target", "target_kind", "target_id", "last_shared_at_us"),
    )
    op.create_table(
        "share_visits",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("share_id", sa.BigInteger, nullable=False),
        sa.Column("visitor_hash", sa.String(64), nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=True),
        sa.Column("visited_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_share_visits_share", "share_id", "visited_at_us"),
    )
    op.create_table(
        "share_touches",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("share_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("touched_at_us", sa.BigInteger, primary_key=True, autoincrement=False),
    )
    op.create_table(
        "share_attributions",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("share_id", sa.BigInteger, nullable=False),
        sa.Column("sharer_id", sa.BigInteger, nullable=False),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("touch", sa.String(8), nullable=False),
        sa.Column("event", sa.String(8), nullable=False),
        sa.Column("event_key", sa.String(128), nullable=False),
        sa.Column("stream_id", sa.String(24), nullable=True),
        sa.Column("coins", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint(
            "touch", "event", "user_id", "event_key", name="uq_share_attributions_once"
        ),
        sa.CheckConstraint("touch IN ('first', 'last')", name="ck_share_attributions_touch"),
        sa.CheckConstraint(
            "event IN ('signup', 'join', 'gift')", name="ck_share_attributions_event"
        ),
        sa.CheckConstraint("coins >= 0", name="ck_share_attributions_coins"),
        sa.Index("ix_share_attributions_sharer", "sharer_id", "touch", "event"),
        sa.Index("ix_share_attributions_share", "share_id"),
    )
    op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(32), primary_key=True),
        sa.Column("secret", sa.String(128), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
    op.drop_table("share_attributions")
    op.drop_table("share_touches")
    op.drop_table("share_visits")
    op.drop_table("share_links")
