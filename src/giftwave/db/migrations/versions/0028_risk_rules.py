"""Fraud and abuse controls (docs/risk.md): a risk flag gains the rule that raised it, its
evidence, a severity, a state (open, held, cleared, frozen) and a natural key that makes a
repeated evaluation of the same pattern one flag; a top-up order records the card fingerprint
the provider reported and the buyer's hashed address, the facts the card rules count.

Revision ID: 0028
Revises: 0027
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("risk_flags") as batch:
        batch.add_column(sa.Column("rule", sa.String(32), nullable=True))
        batch.add_column(sa.Column("natural_key", sa.String(160), nullable=True))
        batch.add_column(sa.Column("evidence", sa.Text, nullable=True))
        batch.add_column(
            sa.Column("severity", sa.String(8), nullable=False, server_default="medium")
        )
        batch.add_column(sa.Column("state", sa.String(8), nullable=False, server_default="open"))
        batch.add_column(sa.Column("decided_by", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("decided_at_us", sa.BigInteger, nullable=True))
        batch.add_column(sa.Column("decision_note", sa.String(500), nullable=True))
        batch.create_unique_constraint("uq_risk_flags_natural_key", ["natural_key"])
        batch.create_check_constraint(
            "ck_risk_flags_state", "state IN ('open', 'held', 'cleared', 'frozen')"
        )
        batch.create_check_constraint(
            "ck_risk_flags_severity", "severity IN ('low', 'medium', 'high')"
        )
    op.create_index("ix_risk_flags_queue", "risk_flags", ["state", "opened_at_us"])
    with op.batch_alter_table("payment_orders") as batch:
        batch.add_column(sa.Column("card_fingerprint", sa.String(64), nullable=True))
        batch.add_column(sa.Column("address_hash", sa.String(64), nullable=True))
    op.create_index(
        "ix_payment_orders_card", "payment_orders", ["card_fingerprint", "updated_at_us"]
    )
    op.create_index(
        "ix_payment_orders_address", "payment_orders", ["address_hash", "updated_at_us"]
    )
    op.create_index("ix_payment_orders_status_time", "payment_orders", ["status", "updated_at_us"])


def downgrade() -> None:
    op.drop_index("ix_payment_orders_status_time", "payment_orders")
    op.drop_index("ix_payment_orders_address", "payment_orders")
    op.drop_index("ix_payment_orders_card", "payment_orders")
    with op.batch_alter_table("payment_orders") as batch:
        batch.drop_column("address_hash")
        batch.drop_column("card_fingerprint")
    op.drop_index("ix_risk_flags_queue", "risk_flags")
    with op.batch_alter_table("risk_flags") as batch:
        batch.drop_constraint("ck_risk_flags_severity", type_="check")
        batch.drop_constraint("ck_risk_flags_state", type_="check")
        batch.drop_constraint("uq_risk_flags_natural_key", type_="unique")
        for column in (
            "decision_note",
            "decided_at_us",
            "decided_by",
            "state",
            "severity",
            "evidence",
            "natural_key",
            "rule",
        ):
            batch.drop_column(column)
