"""Thanks (docs/community.md, "Thanks"): a creator's one thank-you per ended stream to its top
supporters, and who it went to (their profile lists it; the creator's next room shows it).

Revision ID: 0033
Revises: 0032
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0033"
down_revision = "0032"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stream_thanks",
        sa.Column("stream_id", sa.String(24), primary_key=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("to_all", sa.Boolean, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("hidden_by", sa.BigInteger, nullable=True),
        sa.Index("ix_stream_thanks_creator", "creator_id", "created_at_us"),
    )
    op.create_table(
        "stream_thanks_recipients",
        sa.Column("stream_id", sa.String(24), primary_key=True),
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("rank", sa.Integer, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Index("ix_stream_thanks_recipients_user", "user_id", "stream_id"),
    )


def downgrade() -> None:
    op.drop_table("stream_thanks_recipients")
    op.drop_table("stream_thanks")
