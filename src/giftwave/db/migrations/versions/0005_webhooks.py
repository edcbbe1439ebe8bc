"""Outgoing webhooks: creators' endpoints, the delivery outbox, combos still growing.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("url", sa.String(1024), nullable=False),
        sa.Column("secret", sa.String(64), nullable=False),
        sa.Column("events", sa.String(256), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("disabled_at_us", sa.BigInteger, nullable=True),
        sa.Column("failing_since_us", sa.BigInteger, nullable=True),
        sa.Column("dropped_events", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("endpoint_id", sa.BigInteger, nullable=False),
        sa.Column("event_id", sa.String(160), nullable=False),
        sa.Column("type", sa.String(32), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("next_attempt_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("delivered_at_us", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
        sa.Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
    )
    op.create_index(
        "ix_webhook_deliveries_due",
        "webhook_deliveries",
        ["next_attempt_at_us"],
        postgresql_where=sa.text("status = 'pending'"),
        sqlite_where=sa.text("status = 'pending'"),
    )
    op.create_table(
        "webhook_combos",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("stream_id", sa.String(24), nullable=False),
        sa.Column("sender_id", sa.BigInteger, nullable=False),
        sa.Column("gift_id", sa.String(32), nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("combo_id", sa.String(128), nullable=False),
        sa.Column("sender_handle", sa.String(32), nullable=False),
        sa.Column("gift_count", sa.BigInteger, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
        sa.Column("sends", sa.Integer, nullable=False),
        sa.Column("started_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_at_us", sa.BigInteger, nullable=False, index=True),
        sa.UniqueConstraint("stream_id", "sender_id", "gift_id", name="uq_webhook_combos_key"),
    )


def downgrade() -> None:
    op.drop_table("webhook_combos")
    op.drop_index("ix_webhook_deliveries_due", table_name="webhook_deliveries")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
