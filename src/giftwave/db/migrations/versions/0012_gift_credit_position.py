"""Gift credits to sharers follow the ledger from a position (sharing/gift_credits.py).

An existing deployment starts it at the newest transfer: the gifts before the upgrade were
credited by the code before it (which wrote its queue on shutdown), so the first run does not
read the whole history again.

Revision ID: 0012
Revises: 0011
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

NAME = "share_gift_credits"


def upgrade() -> None:
    bind = op.get_bind()
    head = bind.execute(sa.text("SELECT coalesce(max(seq), 0) FROM transfers")).scalar_one()
    bind.execute(
        sa.text(
            "INSERT INTO analytics_watermarks (name, last_seq, updated_at_us) "
            "VALUES (:name, :seq, 0)"
        ),
        {"name": NAME, "seq": int(head)},
    )


def downgrade() -> None:
    op.get_bind().execute(
        sa.text("DELETE FROM analytics_watermarks WHERE name = :name"), {"name": NAME}
    )
