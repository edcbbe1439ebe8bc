"""The notices' fan-out queue (docs/notifications.md, "Producing a notice"): a notice to a
creator's followers is a row worked off the request by a loop on any node; and the indexes the
pruning loop deletes old notices and push jobs by.

Revision ID: 0029
Revises: 0028
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "notice_fanouts",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("payload", sa.Text, nullable=False),
        sa.Column("after_user_id", sa.BigInteger, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("lease_until_us", sa.BigInteger, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("done_at_us", sa.BigInteger, nullable=True),
        sa.UniqueConstraint("creator_id", "kind", "subject", name="uq_notice_fanouts_subject"),
    )
    op.create_index("ix_notice_fanouts_due", "notice_fanouts", ["status", "lease_until_us"])
    op.create_index("ix_notices_created", "notices", ["created_at_us"])
    op.create_index("ix_push_jobs_created", "push_jobs", ["created_at_us"])


def downgrade() -> None:
    op.drop_index("ix_push_jobs_created", table_name="push_jobs")
    op.drop_index("ix_notices_created", table_name="notices")
    op.drop_index("ix_notice_fanouts_due", table_name="notice_fanouts")
    op.drop_table("notice_fanouts")
