"""Notifications (docs/notifications.md): per-creator opt-ins, users' quiet-hour settings,
browser push subscriptions, the inbox of notices and the push queue.

Revision ID: 0024
Revises: 0023
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0024"
down_revision = "0023"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notify_optins",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("creator_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_notify_optins_creator", "notify_optins", ["creator_id"])
    op.create_table(
        "notify_settings",
        sa.Column("user_id", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("time_zone", sa.String(64), nullable=False),
        sa.Column("quiet_from_h", sa.Integer, nullable=False),
        sa.Column("quiet_to_h", sa.Integer, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("endpoint", sa.String(1024), nullable=False, unique=True),
        sa.Column("p256dh", sa.String(128), nullable=False),
        sa.Column("auth", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_push_subscriptions_user", "push_subscriptions", ["user_id"])
    op.create_table(
        "notices",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("user_id", sa.BigInteger, nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("pushed", sa.Boolean, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("read_at_us", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("user_id", "kind", "subject", name="uq_notices_subject"),
    )
    op.create_index("ix_notices_user", "notices", ["user_id", "id"])
    op.create_table(
        "push_jobs",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("notice_id", sa.BigInteger, nullable=False),
        sa.Column("subscription_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at_us", sa.BigInteger, nullable=False),
        sa.Column("last_status", sa.Integer, nullable=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("notice_id", "subscription_id", name="uq_push_jobs_target"),
    )
    op.create_index("ix_push_jobs_due", "push_jobs", ["status", "next_attempt_at_us"])


def downgrade() -> None:
    for name in ("push_jobs", "notices", "push_subscriptions", "notify_settings", "notify_optins"):
        op.drop_table(name)
