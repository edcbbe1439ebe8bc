"""Push notices in the recipient's language (docs/notifications.md, "Languages"): each
browser's subscription keeps the language of the page it subscribed from; the ones made before
this are English, as their notices were.

Revision ID: 0032
Revises: 0031
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0032"
down_revision = "0031"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "push_subscriptions",
        sa.Column("locale", sa.String(8), nullable=False, server_default="en"),
    )


def downgrade() -> None:
    with op.batch_alter_table("push_subscriptions") as batch:
        batch.drop_column("locale")
