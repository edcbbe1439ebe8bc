"""Paid highlighted messages (docs/economy.md, "Paid highlighted messages"): the text a gift
carried, its tier, colour and pinned time, and who hid it, on the gift's own row.

Revision ID: 0021
Revises: 0020
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable, no default: a metadata change on PostgreSQL, no rewrite of a big table.
    op.add_column("gift_sends", sa.Column("message", sa.String(800), nullable=True))
    op.add_column("gift_sends", sa.Column("message_tier", sa.Integer, nullable=True))
    op.add_column("gift_sends", sa.Column("message_colour", sa.String(16), nullable=True))
    op.add_column("gift_sends", sa.Column("message_pinned_until_us", sa.BigInteger, nullable=True))
    op.add_column("gift_sends", sa.Column("message_hidden_by", sa.BigInteger, nullable=True))
    op.create_index(
        "ix_gift_sends_pinned",
        "gift_sends",
        ["stream_id", "message_pinned_until_us"],
        postgresql_where=sa.text("message IS NOT NULL"),
        sqlite_where=sa.text("message IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_gift_sends_pinned", table_name="gift_sends")
    with op.batch_alter_table("gift_sends") as batch:
        for column in (
            "message_hidden_by",
            "message_pinned_until_us",
            "message_colour",
            "message_tier",
            "message",
        ):
            batch.drop_column(column)
