"""One-use tickets for a room's WebSocket, in place of a session token in its URL.

Revision ID: 0013
Revises: 0012
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "socket_tickets",
        sa.Column("ticket_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("stream_id", sa.String(24), nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_socket_tickets_user", "user_id"),
        sa.Index("ix_socket_tickets_expires", "expires_at_us"),
    )


def downgrade() -> None:
    op.drop_table("socket_tickets")
