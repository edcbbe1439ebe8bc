"""Payouts whose reservation the ledger's expiry voided say "expired" (economy/payouts.py).

From now on the void marks its payout in the same transaction (ledger/annex.py PAYOUT_EXPIRED).
Before, a row changed only when someone listed payouts, so an existing deployment may hold
rows still "pending" (or "requested") whose reservation expiry already voided: they are marked
here, once, from the ledger's own voids (ids ``expire:…``).

Revision ID: 0015
Revises: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.get_bind().execute(
        sa.text(
            "UPDATE payouts SET status = 'expired'"
            " WHERE status IN ('requested', 'pending') AND EXISTS ("
            "SELECT 1 FROM transfers t WHERE t.pending_id = 'payout:' || payouts.id"
            " AND t.kind = 'void_pending' AND t.id LIKE 'expire:%')"
        )
    )


def downgrade() -> None:
    pass  # the rows were wrong before; nothing to undo
