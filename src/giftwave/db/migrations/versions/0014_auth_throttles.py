"""Log-in and sign-up throttles (identity/throttle.py): one row per login name or client
address, shared by every server process on the database.

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_throttles",
        sa.Column("key", sa.String(80), primary_key=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("blocked_until_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_auth_throttles_updated", "updated_at_us"),
    )


def downgrade() -> None:
    op.drop_table("auth_throttles")
