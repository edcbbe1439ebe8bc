"""A socket ticket names the session it was asked with: the socket it opens ends with that
session (a logout on any node closes it), not with the user.

Revision ID: 0017
Revises: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Tickets live for seconds: one issued before this revision has none and opens nothing.
    op.add_column("socket_tickets", sa.Column("session_hash", sa.String(64), nullable=True))


def downgrade() -> None:
    op.drop_column("socket_tickets", "session_hash")
