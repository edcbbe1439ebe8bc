"""The economy: users, sessions, API keys, gift catalogue, coin packages, payments, streams,
gift sends and payouts.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id64 = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("handle", sa.String(32), nullable=False, unique=True),
        sa.Column("email", sa.String(254), nullable=True, unique=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("birth_date", sa.Date, nullable=False),
        sa.Column("country", sa.String(2), nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="active"),
        sa.Column("age_verified", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("external_ref", sa.String(160), nullable=True, unique=True),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "sessions",
        sa.Column("token_hash", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("integration", sa.String(64), nullable=False),
        sa.Column("prefix", sa.String(16), nullable=False, unique=True),
        sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("scopes", sa.String(512), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("revoked_at_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "gift_catalog",
        sa.Column("gift_id", sa.String(32), primary_key=True),
        sa.Column("version", sa.Integer, primary_key=True),
        sa.Column("price_coins", sa.BigInteger, nullable=False),
        sa.Column("combo", sa.Boolean, nullable=False),
        sa.Column("image", sa.String(256), nullable=False),
        sa.Column("names_json", sa.Text, nullable=False),
        sa.Column("on_sale", sa.Boolean, nullable=False),
        sa.Column("available_from_us", sa.BigInteger, nullable=True),
        sa.Column("available_until_us", sa.BigInteger, nullable=True),
        sa.Column("sort_order", sa.Integer, nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.CheckConstraint("price_coins > 0", name="ck_gift_catalog_price"),
    )
    op.create_table(
        "coin_packages",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("price_minor", sa.BigInteger, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False),
        sa.UniqueConstraint("currency", "coins", name="uq_coin_packages_currency_coins"),
        sa.CheckConstraint("coins > 0 AND price_minor > 0", name="ck_coin_packages_positive"),
    )
    op.create_table(
        "payment_orders",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("user_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("provider", sa.String(16), nullable=False),
        sa.Column("provider_session_id", sa.String(255), nullable=True),
        sa.Column("provider_payment_id", sa.String(255), nullable=True),
        sa.Column("checkout_url", sa.String(1024), nullable=True),
        sa.Column("package_id", sa.BigInteger, nullable=True),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.Column("updated_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("user_id", "idempotency_key", name="uq_payment_orders_key"),
        sa.UniqueConstraint(
            "provider", "provider_payment_id", name="uq_payment_orders_provider_payment"
        ),
    )
    op.create_table(
        "payment_events",
        sa.Column("provider", sa.String(16), primary_key=True),
        sa.Column("event_id", sa.String(255), primary_key=True),
        sa.Column("payment_id", sa.String(255), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=True),
        sa.Column("kind", sa.String(24), nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("received_at_us", sa.BigInteger, nullable=False),
        sa.Index("ix_payment_events_payment", "provider", "payment_id"),
    )
    op.create_table(
        "streams",
        sa.Column("id", sa.String(24), primary_key=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("title", sa.String(140), nullable=False),
        sa.Column("language", sa.String(8), nullable=False),
        sa.Column("playback_url", sa.String(1024), nullable=True),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at_us", sa.BigInteger, nullable=False),
        sa.Column("ended_at_us", sa.BigInteger, nullable=True),
    )
    op.create_table(
        "gift_sends",
        sa.Column("id", Id64, primary_key=True, autoincrement=True),
        sa.Column("sender_id", sa.BigInteger, nullable=False),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("stream_id", sa.String(24), nullable=False, index=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False),
        sa.Column("gift_id", sa.String(32), nullable=False),
        sa.Column("gift_version", sa.Integer, nullable=False),
        sa.Column("count", sa.Integer, nullable=False),
        sa.Column("coins", sa.BigInteger, nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
        sa.Column("transfer_id", sa.String(128), nullable=False, unique=True),
        sa.Column("reversed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at_us", sa.BigInteger, nullable=False),
        sa.UniqueConstraint("sender_id", "idempotency_key", name="uq_gift_sends_key"),
        sa.Index("ix_gift_sends_creator_time", "creator_id", "created_at_us"),
        sa.Index("ix_gift_sends_sender_time", "sender_id", "created_at_us"),
    )
    op.create_table(
        "payouts",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("creator_id", sa.BigInteger, nullable=False, index=True),
        sa.Column("idempotency_key", sa.String(64), nullable=False),
        sa.Column("diamonds", sa.BigInteger, nullable=False),
        sa.Column("amount_minor", sa.BigInteger, nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("requested_at_us", sa.BigInteger, nullable=False),
        sa.Column("expires_at_us", sa.BigInteger, nullable=False),
        sa.Column("reviewed_by", sa.BigInteger, nullable=True),
        sa.Column("reviewed_at_us", sa.BigInteger, nullable=True),
        sa.Column("note", sa.String(500), nullable=True),
        sa.UniqueConstraint("creator_id", "idempotency_key", name="uq_payouts_key"),
    )


def downgrade() -> None:
    for table in (
        "payouts",
        "gift_sends",
        "streams",
        "payment_events",
        "payment_orders",
        "coin_packages",
        "gift_catalog",
        "api_keys",
        "sessions",
        "users",
    ):
        op.drop_table(table)
