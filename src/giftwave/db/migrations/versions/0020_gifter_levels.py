"""Gifter levels (social/level_follower.py): each gifter's lifetime coins and the highest total
they reached, the coins they gave each creator, every level reached once, and the follower's
positions in the ledger.

An existing deployment counts its whole history (lifetime coins), but announces no level-up
for a gift made before the upgrade: ``gifter_levels_quiet`` holds the newest transfer now.

Revision ID: 0020
Revises: 0019
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0019"
branch_labels = None
depends_on = None

POSITION = "gifter_levels"
QUIET = "gifter_levels_quiet"


def upgrade() -> None:
    op.create_table(
        "gifter_levels",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("peak_coins", sa.BigInteger, nullable=False),
        sa.Column("hidden", sa.Boolean, nullable=False, server_default=sa.text("false")),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "gifter_creators",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "level_ups",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("level", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("stream_id", sa.String(24), nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("send_id", sa.String(200), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False),
        sa.Column("at_us", sa.BigInteger, nullable=False),
    )
    bind = op.get_bind()
    head = bind.execute(sa.text("SELECT coalesce(max(seq), 0) FROM transfers")).scalar_one()
    for name, seq in ((POSITION, 0), (QUIET, int(head))):
        bind.execute(
            sa.text(
                "INSERT INTO analytics_watermarks (name, last_seq, updated_at_us) "
                "VALUES (:name, :seq, 0)"
            ),
            {"name": name, "seq": seq},
        )


def downgrade() -> None:
    op.get_bind().execute(
        sa.text("DELETE FROM analytics_watermarks WHERE name IN (:a, :b)"),
        {"a": POSITION, "b": QUIET},
    )
    op.drop_table("level_ups")
    op.drop_table("gifter_creators")
    op.drop_table("gifter_levels")
