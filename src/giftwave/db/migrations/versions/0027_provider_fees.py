"""Issue 22's leftovers (docs/economy.md): the payout provider's own bills to the platform
(Stripe Connect's fees, one row per balance transaction taken into the ledger), the system's
decision on an expired payout (actor ``system``, outcome ``expire``), the service agreement a
payee's account was opened under (``recipient`` for a cross-border account at Stripe), and what
such a payee received after the provider's conversion (amount, currency, the provider's rate).

Revision ID: 0027
Revises: 0026
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
ACTORS_BEFORE = "'policy', 'admin', 'operator'"
OUTCOMES_BEFORE = "'approve', 'review', 'reject'"
ACTORS = ACTORS_BEFORE + ", 'system'"
OUTCOMES = OUTCOMES_BEFORE + ", 'expire'"


def _decisions(actors: str, outcomes: str) -> sa.Table:
    """payout_decisions as it is with these checks (SQLite rebuilds the table from it)."""
    return sa.Table(
        "payout_decisions",
        sa.MetaData(),
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("payout_id", sa.String(40), nullable=False),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("actor", sa.String(16), nullable=False),
        sa.Column("reviewer_id", sa.BigInteger, nullable=True),
        sa.Column("outcome", sa.String(16), nullable=False),
        sa.Column("reasons", sa.String(500), nullable=False),
        sa.Column("note", sa.String(500), nullable=True),
        sa.Column("decided_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("payout_id", "actor", name="uq_payout_decisions_actor"),
        sa.CheckConstraint(f"actor IN ({actors})", name="ck_payout_decisions_actor"),
        sa.CheckConstraint(f"outcome IN ({outcomes})", name="ck_payout_decisions_outcome"),
        sa.Index("ix_payout_decisions_time", "decided_at_us"),
    )


def _checks(actors: str, outcomes: str) -> None:
    if op.get_bind().dialect.name == "sqlite":
        # SQLite cannot change a CHECK: the table is copied into one that has the new ones.
        with op.batch_alter_table(
            "payout_decisions", copy_from=_decisions(actors, outcomes), recreate="always"
        ):
            pass
        return
    for name in ("ck_payout_decisions_actor", "ck_payout_decisions_outcome"):
        op.drop_constraint(name, "payout_decisions", type_="check")
    op.create_check_constraint(
        "ck_payout_decisions_actor", "payout_decisions", f"actor IN ({actors})"
    )
    op.create_check_constraint(
        "ck_payout_decisions_outcome", "payout_decisions", f"outcome IN ({outcomes})"
    )


def upgrade() -> None:
    op.create_table(
        "provider_fees",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("reference", sa.String(255), primary_key=True),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("fee_type", sa.String(64), nullable=False),
        sa.Column("period", sa.String(64), nullable=True),
        sa.Column("payout_id", sa.String(40), nullable=True),
        sa.Column("transfer_id", sa.String(128), nullable=False),
        sa.Column("billed_at_us", sa.BigInteger, nullable=False),
        sa.Column("imported_at_us", sa.BigInteger, nullable=False),
    )
    op.create_index("ix_provider_fees_billed", "provider_fees", ["billed_at_us"])
    _checks(ACTORS, OUTCOMES)
    op.add_column("payees", sa.Column("service_agreement", sa.String(16), nullable=True))
    for column in (
        sa.Column("received_amount_minor", sa.BigInteger, nullable=True),
        sa.Column("received_currency", sa.String(3), nullable=True),
        sa.Column("provider_fx_rate_micros", sa.BigInteger, nullable=True),
    ):
        op.add_column("payouts", column)


def downgrade() -> None:
    with op.batch_alter_table("payouts") as batch:
        for name in ("provider_fx_rate_micros", "received_currency", "received_amount_minor"):
            batch.drop_column(name)
    with op.batch_alter_table("payees") as batch:
        batch.drop_column("service_agreement")
    op.execute("DELETE FROM payout_decisions WHERE actor = 'system'")
    _checks(ACTORS_BEFORE, OUTCOMES_BEFORE)
    op.drop_index("ix_provider_fees_billed", "provider_fees")
    op.drop_table("provider_fees")
