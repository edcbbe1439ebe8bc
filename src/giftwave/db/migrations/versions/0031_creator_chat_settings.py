"""Chat modes belong to the creator (docs/community.md, "Chat modes"): creator_chat_settings
takes each club's mode (a club in members mode keeps it) and fan_clubs loses its two columns,
so a creator without a club can make their chat subscribers-only.

Revision ID: 0031
Revises: 0030
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "creator_chat_settings",
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("mode", sa.String(16), nullable=False),
        sa.Column("min_level", sa.Integer, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    # Only the clubs that chose something: no row is everyone.
    op.execute(
        "INSERT INTO creator_chat_settings (creator_id, mode, min_level, updated_at_us) "
        "SELECT creator_id, chat_mode, chat_min_level, updated_at_us FROM fan_clubs "
        "WHERE chat_mode <> 'everyone'"
    )
    with op.batch_alter_table("fan_clubs") as batch:  # SQLite: the table is rebuilt
        batch.drop_column("chat_mode")
        batch.drop_column("chat_min_level")


def downgrade() -> None:
    with op.batch_alter_table("fan_clubs") as batch:
        batch.add_column(
            sa.Column("chat_mode", sa.String(16), nullable=False, server_default="everyone")
        )
        batch.add_column(
            sa.Column("chat_min_level", sa.Integer, nullable=False, server_default="1")
        )
    # A creator without a club loses their setting: the old schema had nowhere to keep it.
    op.execute(
        "UPDATE fan_clubs SET "
        "chat_mode = (SELECT s.mode FROM creator_chat_settings s "
        "WHERE s.creator_id = fan_clubs.creator_id), "
        "chat_min_level = (SELECT s.min_level FROM creator_chat_settings s "
        "WHERE s.creator_id = fan_clubs.creator_id) "
        "WHERE creator_id IN (SELECT creator_id FROM creator_chat_settings)"
    )
    op.drop_table("creator_chat_settings")
