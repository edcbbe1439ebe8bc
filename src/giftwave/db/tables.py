"""SQLAlchemy Core tables: the schema as the code sees it (migrations create it)."""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    text,
)

metadata = MetaData()

# SQLite makes only an INTEGER PRIMARY KEY the rowid alias; PostgreSQL wants 64 bits.
Id64 = BigInteger().with_variant(Integer(), "sqlite")


# Column groups that many tables share, each said once. A table lists them in its own order.
def _counters(*names: str) -> list[Column[int]]:
    """Running totals that start at zero."""
    return [Column(name, BigInteger, nullable=False, server_default="0") for name in names]


def _sums(*names: str) -> list[Column[int]]:
    """Totals a writer always sets (the rollups add to them)."""
    return [Column(name, BigInteger, nullable=False) for name in names]


def _key(*names: str) -> list[Column[int]]:
    """A primary key of 64-bit values given by the writer (no sequence): part or whole."""
    return [Column(name, BigInteger, primary_key=True, autoincrement=False) for name in names]


accounts = Table(
    "accounts",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("name", String(128), nullable=False, unique=True),
    Column("asset", String(8), nullable=False),
    Column("owner", String(128), nullable=False, server_default=""),
    Column("flags", Integer, nullable=False, server_default="0"),
    *_counters("debits_pending", "debits_posted", "credits_pending", "credits_posted"),
    Column("created_at_us", BigInteger, nullable=False),
    # The database itself refuses an overdraft, whatever a writer believed the balance was.
    CheckConstraint(
        "(flags & 1) = 0 OR debits_posted + debits_pending <= credits_posted",
        name="ck_accounts_no_overdraft",
    ),
    # The diamond fraction loop reads one asset's accounts in id order (migration 0025).
    Index("ix_accounts_asset", "asset", "id"),
)

# seq is assigned by the writer holding the chain head, so it is gap-free and ordered like
# the chain; the client's id is the idempotency key, enforced by its unique constraint.
transfers = Table(
    "transfers",
    metadata,
    Column("seq", Id64, primary_key=True, autoincrement=False),
    Column("id", String(128), nullable=False, unique=True),
    Column("debit_account_id", BigInteger, nullable=False),
    Column("credit_account_id", BigInteger, nullable=False),
    Column("amount", BigInteger, nullable=False),
    Column("asset", String(8), nullable=False),
    Column("code", String(16), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("pending_id", String(128), nullable=True),
    Column("reverses_id", String(128), nullable=True),
    Column("timeout_s", Integer, nullable=False),
    Column("expires_at_us", BigInteger, nullable=True),
    Column("batch_seq", BigInteger, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)
# At most one post or void per pending transfer, even across processes. Partial: gifts carry
# no pending_id and should not pay for an index entry.
Index(
    "ux_transfers_pending_id",
    transfers.c.pending_id,
    unique=True,
    postgresql_where=text("pending_id IS NOT NULL"),
    sqlite_where=text("pending_id IS NOT NULL"),
)
Index(
    "ix_transfers_pending_expiry",
    transfers.c.expires_at_us,
    postgresql_where=text("kind = 'pending'"),
    sqlite_where=text("kind = 'pending'"),
)

ledger_batches = Table(
    "ledger_batches",
    metadata,
    Column("seq", Id64, primary_key=True, autoincrement=False),
    Column("first_transfer_seq", BigInteger, nullable=False),
    Column("transfer_count", Integer, nullable=False),
    Column("prev_hash", String(64), nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

# One row: the end of the chain. Locking it serializes batch commits across processes, which
# the chain needs anyway (each batch names the one before it).
ledger_head = Table(
    "ledger_head",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("batch_seq", BigInteger, nullable=False),
    Column("transfer_seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
    # Bumped by every flag change (freeze), which also holds this row: see ledger/store.py.
    Column("accounts_version", BigInteger, nullable=False, server_default="0"),
)


# --- the economy (migration 0002) -------------------------------------------------------------

users = Table(
    "users",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("handle", String(32), nullable=False, unique=True),
    Column("email", String(254), nullable=True, unique=True),
    Column("password_hash", String(255), nullable=True),
    Column("role", String(16), nullable=False),
    Column("birth_date", Date, nullable=False),
    Column("country", String(2), nullable=False),
    Column("status", String(16), nullable=False, server_default="active"),
    Column("age_verified", Boolean, nullable=False, server_default=text("false")),
    # "<integration>:<their user id>" for users a platform integration created.
    Column("external_ref", String(160), nullable=True, unique=True),
    Column("created_at_us", BigInteger, nullable=False),
)

# Only a hash of each token is stored: a leaked table opens no sessions.
sessions = Table(
    "sessions",
    metadata,
    Column("token_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("csrf_token", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
)

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("integration", String(64), nullable=False),
    Column("prefix", String(16), nullable=False, unique=True),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("scopes", String(512), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("revoked_at_us", BigInteger, nullable=True),
)

# A price change is a new version; gift sends name the version they paid for.
gift_catalog = Table(
    "gift_catalog",
    metadata,
    Column("gift_id", String(32), primary_key=True),
    Column("version", Integer, primary_key=True),
    Column("price_coins", BigInteger, nullable=False),
    Column("combo", Boolean, nullable=False),
    Column("image", String(256), nullable=False),
    Column("names_json", Text, nullable=False),
    Column("on_sale", Boolean, nullable=False),
    Column("available_from_us", BigInteger, nullable=True),
    Column("available_until_us", BigInteger, nullable=True),
    Column("sort_order", Integer, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    CheckConstraint("price_coins > 0", name="ck_gift_catalog_price"),
)

coin_packages = Table(
    "coin_packages",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("currency", String(3), nullable=False),
    Column("coins", BigInteger, nullable=False),
    Column("price_minor", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    UniqueConstraint("currency", "coins", name="uq_coin_packages_currency_coins"),
    CheckConstraint("coins > 0 AND price_minor > 0", name="ck_coin_packages_positive"),
)

payment_orders = Table(
    "payment_orders",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("user_id", BigInteger, nullable=False, index=True),
    Column("idempotency_key", String(64), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("provider_session_id", String(255), nullable=True),
    Column("provider_payment_id", String(255), nullable=True),
    Column("checkout_url", String(1024), nullable=True),
    Column("package_id", BigInteger, nullable=True),
    Column("coins", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    # What the risk rules count (migration 0027): the card the provider reported, and the
    # buyer's address, hashed with a server secret (never stored in the clear).
    Column("card_fingerprint", String(64), nullable=True),
    Column("address_hash", String(64), nullable=True),
    UniqueConstraint("user_id", "idempotency_key", name="uq_payment_orders_key"),
    Index("ix_payment_orders_card", "card_fingerprint", "updated_at_us"),
    Index("ix_payment_orders_address", "address_hash", "updated_at_us"),
    Index("ix_payment_orders_status_time", "status", "updated_at_us"),
    UniqueConstraint("provider", "provider_payment_id", name="uq_payment_orders_provider_payment"),
)

# Every verified webhook event, once (the provider's event id is the key): the state of a
# payment is folded from its events, so their number and order do not matter.
payment_events = Table(
    "payment_events",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("payment_id", String(255), nullable=False),
    Column("order_id", String(40), nullable=True),
    Column("kind", String(24), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("received_at_us", BigInteger, nullable=False),
    Index("ix_payment_events_payment", "provider", "payment_id"),
)

streams = Table(
    "streams",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("creator_id", BigInteger, nullable=False, index=True),
    Column("title", String(140), nullable=False),
    Column("language", String(8), nullable=False),
    Column("playback_url", String(1024), nullable=True),
    Column("status", String(16), nullable=False),
    Column("started_at_us", BigInteger, nullable=False),
    Column("ended_at_us", BigInteger, nullable=True),
)

# What a gift was (stream, gift, version, count). The ledger writes the row in the transaction
# of the gift's transfers, when they are newly committed (ledger/annex.py; keep its column list
# in step). Older versions wrote it first, so old rows may have no transfers: readers join to
# the coins transfer (``transfer_id``), the ledger being the one source of truth for what was
# paid; this table only says what it was for.
gift_sends = Table(
    "gift_sends",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("sender_id", BigInteger, nullable=False),
    Column("idempotency_key", String(64), nullable=False),
    Column("stream_id", String(24), nullable=False, index=True),
    Column("creator_id", BigInteger, nullable=False),
    Column("gift_id", String(32), nullable=False),
    Column("gift_version", Integer, nullable=False),
    Column("count", Integer, nullable=False),
    Column("coins", BigInteger, nullable=False),
    Column("diamonds", BigInteger, nullable=False),
    Column("transfer_id", String(128), nullable=False, unique=True),
    Column("reversed", Boolean, nullable=False, server_default=text("false")),
    Column("created_at_us", BigInteger, nullable=False),
    # A paid highlighted message sent with the gift (economy/paid_messages.py), written with
    # the row in the gift's transaction; NULL for the plain gifts that are nearly all of them.
    Column("message", String(800), nullable=True),
    Column("message_tier", Integer, nullable=True),
    Column("message_colour", String(16), nullable=True),
    Column("message_pinned_until_us", BigInteger, nullable=True),
    Column("message_hidden_by", BigInteger, nullable=True),  # the moderator who hid it
    UniqueConstraint("sender_id", "idempotency_key", name="uq_gift_sends_key"),
    Index("ix_gift_sends_creator_time", "creator_id", "created_at_us"),
    Index("ix_gift_sends_sender_time", "sender_id", "created_at_us"),
    # Only the rows with a message: a plain gift's insert never touches it.
    Index(
        "ix_gift_sends_pinned",
        "stream_id",
        "message_pinned_until_us",
        postgresql_where=text("message IS NOT NULL"),
        sqlite_where=text("message IS NOT NULL"),
    ),
)
# The payout policy asks for a creator's recently reversed gifts (migration 0025): few rows.
Index(
    "ix_gift_sends_reversed",
    gift_sends.c.creator_id,
    postgresql_where=text("reversed"),
    sqlite_where=text("reversed"),
)

payouts = Table(
    "payouts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("creator_id", BigInteger, nullable=False, index=True),
    Column("idempotency_key", String(64), nullable=False),
    Column("diamonds", BigInteger, nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("requested_at_us", BigInteger, nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    Column("reviewed_by", BigInteger, nullable=True),
    Column("reviewed_at_us", BigInteger, nullable=True),
    Column("note", String(500), nullable=True),
    # Through a payout provider (migration 0018): the transfer made for it (its idempotency
    # key is the payout's id), the provider's reason for a return, the sweeper's attempts.
    Column("provider", String(16), nullable=True),
    Column("provider_transfer_id", String(255), nullable=True),
    Column("provider_reason", String(255), nullable=True),
    Column("transfer_attempts", Integer, nullable=False, server_default="0"),
    Column("processing_since_us", BigInteger, nullable=True),
    # What the payee is sent, in their currency, at the rate recorded (economy/fx.py).
    Column("payout_currency", String(3), nullable=True),
    Column("payout_amount_minor", BigInteger, nullable=True),
    Column("fx_rate_micros", BigInteger, nullable=True),
    # What a payee the provider converts for (a cross-border account) received: the amount in
    # their account's currency, and the provider's rate (sent → received, millionths).
    Column("received_amount_minor", BigInteger, nullable=True),
    Column("received_currency", String(3), nullable=True),
    Column("provider_fx_rate_micros", BigInteger, nullable=True),
    # Migration 0025: when it was returned (the policy looks back at recent returns), the
    # provider's fee for a paid transfer, and why an operator must look at it (a transfer
    # event whose amount or currency is not the payout's).
    Column("returned_at_us", BigInteger, nullable=True),
    Column("fee_minor", BigInteger, nullable=True),
    Column("flag", String(255), nullable=True),
    UniqueConstraint("creator_id", "idempotency_key", name="uq_payouts_key"),
    Index("ix_payouts_status", "status"),
)

# --- payouts through a provider (migration 0018; docs/economy.md) ----------------------------

# A creator's account at the payout provider, as its last verified report described it.
# ``version`` is the provider's own order of its reports: an older one arriving late is ignored.
payees = Table(
    "payees",
    metadata,
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("provider", String(16), nullable=False),
    Column("account_id", String(255), nullable=False),
    Column("country", String(2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("state", String(16), nullable=False),
    Column("requirements_due", String(1000), nullable=False, server_default=""),
    Column("disabled_reason", String(255), nullable=True),
    Column("version", BigInteger, nullable=False, server_default="0"),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    # What the account was opened under at the provider, where it says (Stripe: ``recipient``
    # for an account in another country than the platform's); None: the provider's default.
    Column("service_agreement", String(16), nullable=True),
    UniqueConstraint("provider", "account_id", name="uq_payees_account"),
    CheckConstraint(
        "state IN ('pending', 'verified', 'restricted', 'disabled')", name="ck_payees_state"
    ),
)

# Every verified transfer webhook, once: a payout's end is folded from all of its events, so
# their number and order do not matter.
payout_events = Table(
    "payout_events",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("event_id", String(255), primary_key=True),
    Column("payout_id", String(40), nullable=False, index=True),
    Column("kind", String(16), nullable=False),
    Column("transfer_id", String(255), nullable=False),
    Column("reason", String(255), nullable=True),
    Column("received_at_us", BigInteger, nullable=False),
    # What the event said was moved, and the provider's fee (migration 0025; None before).
    Column("amount_minor", BigInteger, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("fee_minor", BigInteger, nullable=True),
)

# --- the payout policy (migration 0025; docs/economy.md "Who approves a payout") ---------------

# Every decision on a payout, with its reasons: the policy's at the request (approve, or
# review by a person), then a person's (approve or reject). One per payout and actor.
payout_decisions = Table(
    "payout_decisions",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("payout_id", String(40), nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("actor", String(16), nullable=False),
    Column("reviewer_id", BigInteger, nullable=True),
    Column("outcome", String(16), nullable=False),
    Column("reasons", String(500), nullable=False),
    Column("note", String(500), nullable=True),
    Column("decided_at_us", BigInteger, nullable=False),
    UniqueConstraint("payout_id", "actor", name="uq_payout_decisions_actor"),
    # ``system``: giftwave itself (the ledger's expiry of a payout nobody reviewed in time).
    CheckConstraint(
        "actor IN ('policy', 'admin', 'operator', 'system')", name="ck_payout_decisions_actor"
    ),
    CheckConstraint(
        "outcome IN ('approve', 'review', 'reject', 'expire')", name="ck_payout_decisions_outcome"
    ),
    Index("ix_payout_decisions_time", "decided_at_us"),
)

# What the payout provider billed the platform's balance for its service, one row per bill the
# ledger took in (economy/provider_fees.py): Stripe Connect's payout, account and volume fees,
# keyed by the provider's own record (a balance transaction). ``payout_id`` when the bill
# names the payout it was for; a bill for a period names none.
provider_fees = Table(
    "provider_fees",
    metadata,
    Column("provider", String(16), primary_key=True),
    Column("reference", String(255), primary_key=True),
    Column("amount_minor", BigInteger, nullable=False),  # a charge > 0, a credit < 0
    Column("currency", String(3), nullable=False),
    Column("fee_type", String(64), nullable=False),
    Column("period", String(64), nullable=True),
    Column("payout_id", String(40), nullable=True),
    Column("transfer_id", String(128), nullable=False),  # the ledger's
    Column("billed_at_us", BigInteger, nullable=False),
    Column("imported_at_us", BigInteger, nullable=False),
    Index("ix_provider_fees_billed", "billed_at_us"),
)

# Reasons to look at a user before money leaves: an open flag (closed_at_us NULL) sends their
# payouts to a person. Issue 24's risk checks open and close them; an admin may too.
risk_flags = Table(
    "risk_flags",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("note", String(500), nullable=True),
    Column("opened_by", BigInteger, nullable=True),
    Column("opened_at_us", BigInteger, nullable=False),
    Column("closed_by", BigInteger, nullable=True),
    Column("closed_at_us", BigInteger, nullable=True),
    # The rules engine's (migration 0027, economy/risk_rules.py): which rule, one flag per
    # pattern (``natural_key``), what it saw (JSON), and a person's decision on it.
    Column("rule", String(32), nullable=True),
    Column("natural_key", String(160), nullable=True),
    Column("evidence", Text, nullable=True),
    Column("severity", String(8), nullable=False, server_default="medium"),
    Column("state", String(8), nullable=False, server_default="open"),
    Column("decided_by", BigInteger, nullable=True),
    Column("decided_at_us", BigInteger, nullable=True),
    Column("decision_note", String(500), nullable=True),
    UniqueConstraint("natural_key", name="uq_risk_flags_natural_key"),
    CheckConstraint("state IN ('open', 'held', 'cleared', 'frozen')", name="ck_risk_flags_state"),
    CheckConstraint("severity IN ('low', 'medium', 'high')", name="ck_risk_flags_severity"),
    Index("ix_risk_flags_queue", "state", "opened_at_us"),
)
Index(
    "ix_risk_flags_open",
    risk_flags.c.user_id,
    postgresql_where=text("closed_at_us IS NULL"),
    sqlite_where=text("closed_at_us IS NULL"),
)

# The sandbox payout provider's own records (payments/sandbox_payouts.py): what a real
# provider keeps on its side, so every node of a demo sees the same accounts and transfers.
sandbox_payee_accounts = Table(
    "sandbox_payee_accounts",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("creator_id", BigInteger, nullable=False, unique=True),
    Column("country", String(2), nullable=False),
    Column("currency", String(3), nullable=False),
    Column("details_submitted", Boolean, nullable=False),
    Column("payouts_enabled", Boolean, nullable=False),
    Column("requirements_due", String(1000), nullable=False),
    Column("disabled_reason", String(255), nullable=True),
    Column("bank", String(16), nullable=False),
    Column("version", BigInteger, nullable=False),
)

sandbox_payout_transfers = Table(
    "sandbox_payout_transfers",
    metadata,
    Column("id", String(40), primary_key=True),
    Column("idempotency_key", String(64), nullable=False, unique=True),
    Column("account_id", String(40), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),
    Column("reason", String(255), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("fee_minor", BigInteger, nullable=False, server_default="0"),  # charged when paid
)

# A creator's goal for a stream; the newest one not cleared is the stream's goal.
stream_goals = Table(
    "stream_goals",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("stream_id", String(24), nullable=False, index=True),
    Column("kind", String(8), nullable=False),
    Column("gift_id", String(32), nullable=True),
    Column("target", BigInteger, nullable=False),
    Column("title", String(80), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("cleared_at_us", BigInteger, nullable=True),
    CheckConstraint("target > 0", name="ck_stream_goals_target"),
)

# Two live streams in a timed match. A stream is in at most one pending or active battle (the
# rule is kept by locking both stream rows, see live/battles.py); the scores are written once,
# when the battle ends, from the committed gifts.
battles = Table(
    "battles",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("stream_a", String(24), nullable=False),  # the challenger's
    Column("stream_b", String(24), nullable=False),  # the invited creator's
    Column("creator_a", BigInteger, nullable=False),
    Column("creator_b", BigInteger, nullable=False),
    Column("status", String(8), nullable=False),
    Column("duration_s", Integer, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("started_at_us", BigInteger, nullable=True),
    Column("ends_at_us", BigInteger, nullable=True),
    Column("ended_at_us", BigInteger, nullable=True),
    *_counters("score_a", "score_b"),
    Column("winner", String(4), nullable=True),
    CheckConstraint(
        "status IN ('pending', 'active', 'ended', 'declined', 'expired')",
        name="ck_battles_status",
    ),
    CheckConstraint("stream_a <> stream_b AND creator_a <> creator_b", name="ck_battles_sides"),
    CheckConstraint("duration_s BETWEEN 1 AND 1800", name="ck_battles_duration"),
    CheckConstraint("score_a >= 0 AND score_b >= 0", name="ck_battles_scores"),
    CheckConstraint(
        "status IN ('pending', 'declined', 'expired') OR (started_at_us IS NOT NULL AND "
        "ends_at_us IS NOT NULL AND ends_at_us >= started_at_us)",
        name="ck_battles_started",
    ),
    CheckConstraint(
        "(status = 'ended') = (winner IS NOT NULL) AND (winner IS NULL OR winner IN "
        "('a', 'b', 'draw'))",
        name="ck_battles_winner",
    ),
    CheckConstraint(
        "(status IN ('pending', 'active')) = (ended_at_us IS NULL)", name="ck_battles_ended"
    ),
    Index("ix_battles_stream_a", "stream_a", "status"),
    Index("ix_battles_stream_b", "stream_b", "status"),
    Index("ix_battles_due", "status", "ends_at_us"),
)

# --- outgoing webhooks (migration 0005) -------------------------------------------------------

# A creator's endpoint. The secret is kept as given (it signs every delivery, so it cannot be a
# hash); it is shown to the creator once, at registration.
webhook_endpoints = Table(
    "webhook_endpoints",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("creator_id", BigInteger, nullable=False, index=True),
    Column("url", String(1024), nullable=False),
    Column("secret", String(64), nullable=False),
    Column("events", String(256), nullable=False),  # comma-separated event types
    Column("created_at_us", BigInteger, nullable=False),
    Column("disabled_at_us", BigInteger, nullable=True),
    # Since when every attempt failed (none since succeeded); long enough, and it is disabled.
    Column("failing_since_us", BigInteger, nullable=True),
    # Events not queued because the endpoint already had its cap of pending deliveries.
    Column("dropped_events", BigInteger, nullable=False, server_default="0"),
)

# The outbox: one row per (endpoint, event), written before the gift (or combo, goal, battle)
# is acknowledged; the unique key makes every enqueue idempotent, across nodes too.
webhook_deliveries = Table(
    "webhook_deliveries",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("endpoint_id", BigInteger, nullable=False),
    Column("event_id", String(160), nullable=False),
    Column("type", String(32), nullable=False),
    Column("payload", Text, nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    # When a pending delivery is next due; while one is being attempted, the end of its lease.
    Column("next_attempt_at_us", BigInteger, nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("last_error", String(500), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("delivered_at_us", BigInteger, nullable=True),
    UniqueConstraint("endpoint_id", "event_id", name="uq_webhook_deliveries_event"),
    Index("ix_webhook_deliveries_endpoint", "endpoint_id", "id"),
)
Index(
    "ix_webhook_deliveries_due",
    webhook_deliveries.c.next_attempt_at_us,
    postgresql_where=text("status = 'pending'"),
    sqlite_where=text("status = 'pending'"),
)

# Combos still growing, for creators with a combo_end endpoint: one row per (stream, sender,
# gift), closed into combo_end deliveries once the sender has been quiet for the window. In the
# database rather than in a room, so a crash or a second node neither loses nor doubles one.
webhook_combos = Table(
    "webhook_combos",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("stream_id", String(24), nullable=False),
    Column("sender_id", BigInteger, nullable=False),
    Column("gift_id", String(32), nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("combo_id", String(128), nullable=False),
    Column("sender_handle", String(32), nullable=False),
    Column("gift_count", BigInteger, nullable=False),
    Column("coins", BigInteger, nullable=False),
    Column("diamonds", BigInteger, nullable=False),
    Column("sends", Integer, nullable=False),
    Column("started_at_us", BigInteger, nullable=False),
    Column("last_at_us", BigInteger, nullable=False, index=True),
    UniqueConstraint("stream_id", "sender_id", "gift_id", name="uq_webhook_combos_key"),
)

# One secret per creator for the link of their OBS overlay (/overlay/live?key=…): it follows
# whichever stream they are live on, and a leaked link is rotated from the studio.
overlay_keys = Table(
    "overlay_keys",
    metadata,
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("key", String(64), nullable=False, unique=True),
    Column("created_at_us", BigInteger, nullable=False),
)

# --- sharing (migration 0007; docs/sharing.md) ------------------------------------------------

# A short link (/s/{code}) one user made for one target through one channel: the same user,
# target and channel get the same code back. ``last_shared_at_us`` moves on every share, so "shared
# in the last hour" counts people who shared it again, and the link lives on while people share.
share_links = Table(
    "share_links",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("code", String(16), nullable=False, unique=True),
    Column("sharer_id", BigInteger, nullable=False),
    Column("target_kind", String(8), nullable=False),
    Column("target_id", String(32), nullable=False),
    Column("channel", String(16), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("last_shared_at_us", BigInteger, nullable=False),
    UniqueConstraint(
        "sharer_id", "target_kind", "target_id", "channel", name="uq_share_links_sharer_target"
    ),
    CheckConstraint("target_kind IN ('stream', 'profile', 'clip')", name="ck_share_links_kind"),
    Index("ix_share_links_target", "target_kind", "target_id", "last_shared_at_us"),
)

# One opening of a link. No address is kept: ``visitor_hash`` is SHA-256 of the day's salt, the
# address and the User-Agent, and the salt changes every UTC day (see sharing/visitors.py).
share_visits = Table(
    "share_visits",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("share_id", BigInteger, nullable=False),
    Column("visitor_hash", String(64), nullable=False),
    Column("user_id", BigInteger, nullable=True),  # a logged-in visitor
    Column("visited_at_us", BigInteger, nullable=False),
    Index("ix_share_visits_share", "share_id", "visited_at_us"),
)

# A user who came through a link: logged in when they opened it, or later with the link's
# cookie (signing up, joining a room). Attribution reads a user's touches inside the window.
share_touches = Table(
    "share_touches",
    metadata,
    *_key("user_id", "share_id", "touched_at_us"),
)

# What a touched user did next, credited to the first and to the last link that brought them
# (two rows). The unique key makes each credit once: a gift by its send_id, a join per stream, a
# sign-up per user, however often the observer or the socket sees it.
share_attributions = Table(
    "share_attributions",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("share_id", BigInteger, nullable=False),
    Column("sharer_id", BigInteger, nullable=False),
    Column("user_id", BigInteger, nullable=False),
    Column("touch", String(8), nullable=False),
    Column("event", String(8), nullable=False),
    Column("event_key", String(128), nullable=False),
    Column("stream_id", String(24), nullable=True),
    Column("coins", BigInteger, nullable=False, server_default="0"),
    Column("at_us", BigInteger, nullable=False),
    UniqueConstraint("touch", "event", "user_id", "event_key", name="uq_share_attributions_once"),
    CheckConstraint("touch IN ('first', 'last')", name="ck_share_attributions_touch"),
    CheckConstraint("event IN ('signup', 'join', 'gift')", name="ck_share_attributions_event"),
    CheckConstraint("coins >= 0", name="ck_share_attributions_coins"),
    Index("ix_share_attributions_sharer", "sharer_id", "touch", "event"),
    Index("ix_share_attributions_share", "share_id"),
)

# Server secrets kept in the database, made on first use, so every node agrees without any of
# them in the code or the environment. ``share_visitor_salt`` keys the daily visitor-hash salt
# and signs the share cookie.
server_secrets = Table(
    "server_secrets",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("secret", String(128), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
)

# --- economy health analytics (migration 0009; docs/analytics.md) ------------------------------
# Rollups of the ledger, kept by analytics/rollup.py: it reads committed transfers past its
# watermark (transfers.seq is gap-free and assigned in commit order, so nothing committed later
# can appear below it) and adds them here in the same transaction that moves the watermark.
# Times are bucketed: minute_us is the start of the UTC minute, day is days since 1970-01-01,
# week is the ISO week (Monday to Sunday) from analytics/rollup.py week_of_day: (day + 3) // 7.

analytics_watermarks = Table(
    "analytics_watermarks",
    metadata,
    Column("name", String(32), primary_key=True),
    Column("last_seq", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# Gifter levels (social/level_follower.py, migration 0020): a gifter's lifetime coins net of
# reversals, the highest total they ever reached (their level stands on it: never taken back),
# and whether they hide it from others.
gifter_levels = Table(
    "gifter_levels",
    metadata,
    *_key("user_id"),
    *_sums("coins", "peak_coins"),
    Column("hidden", Boolean, nullable=False, server_default=text("false")),
    Column("updated_at_us", BigInteger, nullable=False),
)

# The coins each gifter gave each creator, net of reversals: "the creators they support most".
gifter_creators = Table(
    "gifter_creators",
    metadata,
    *_key("user_id", "creator_id"),
    *_sums("coins"),
)

# Every level a gifter reached, once, with the gift that crossed it: the room event and the
# webhook come from the run that wrote the row.
level_ups = Table(
    "level_ups",
    metadata,
    *_key("user_id"),
    Column("level", Integer, primary_key=True, autoincrement=False),
    Column("stream_id", String(24), nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("send_id", String(200), nullable=False),
    Column("seq", BigInteger, nullable=False),
    Column("at_us", BigInteger, nullable=False),
)

# Gifts per stream and minute: gifts per minute, coins, diamonds, and the spikes.
analytics_stream_minutes = Table(
    "analytics_stream_minutes",
    metadata,
    Column("stream_id", String(24), primary_key=True),
    *_key("minute_us"),
    *_sums("gifts", "coins", "diamonds"),
    # The largest single send (count) in the minute: a combo shows here.
    Column("max_count", Integer, nullable=False),
)

analytics_stream_gifters = Table(
    "analytics_stream_gifters",
    metadata,
    Column("stream_id", String(24), primary_key=True),
    *_key("sender_id"),
    *_sums("coins", "gifts"),
)

# Viewers in a room, sampled once a minute (the most seen in that minute).
analytics_stream_viewers = Table(
    "analytics_stream_viewers",
    metadata,
    Column("stream_id", String(24), primary_key=True),
    *_key("minute_us"),
    Column("viewers", Integer, nullable=False),
)

analytics_creator_days = Table(
    "analytics_creator_days",
    metadata,
    *_key("creator_id"),
    Column("day", Integer, primary_key=True, autoincrement=False),
    *_sums("gifts", "coins", "diamonds"),
)

analytics_creators = Table(
    "analytics_creators",
    metadata,
    *_key("creator_id"),
    *_sums("gifts", "coins", "diamonds"),
    Index("ix_analytics_creators_diamonds", "diamonds"),
)

analytics_creator_gifters = Table(
    "analytics_creator_gifters",
    metadata,
    *_key("creator_id", "sender_id"),
    *_sums("coins", "gifts"),
    Column("first_day", Integer, nullable=False),
    Column("last_day", Integer, nullable=False),
    Index("ix_analytics_creator_gifters_coins", "creator_id", "coins"),
)

analytics_gifters = Table(
    "analytics_gifters",
    metadata,
    *_key("sender_id"),
    *_sums("coins", "gifts"),
    Column("first_day", Integer, nullable=False),
    Column("last_day", Integer, nullable=False),
    Index("ix_analytics_gifters_coins", "coins"),
)

# Gifters with net coins, counted in buckets of their coins (analytics.metrics.bucket_from):
# the concentration figures read these few thousand rows, not a row per gifter.
analytics_gifter_buckets = Table(
    "analytics_gifter_buckets",
    metadata,
    *_key("coins_from"),
    *_sums("gifters", "coins"),
)

# The weeks in which each gifter gifted: cohort retention.
analytics_gifter_weeks = Table(
    "analytics_gifter_weeks",
    metadata,
    *_key("sender_id"),
    Column("week", Integer, primary_key=True, autoincrement=False),
)

# Gifters of each first week (cohort) who gifted again in a later week: kept as the pairs above
# are first seen, so retention reads a small table.
analytics_cohort_weeks = Table(
    "analytics_cohort_weeks",
    metadata,
    Column("cohort_week", Integer, primary_key=True, autoincrement=False),
    Column("week", Integer, primary_key=True, autoincrement=False),
    Column("gifters", BigInteger, nullable=False),
)

# The whole economy per UTC day, from the transfers' codes (see docs/analytics.md).
analytics_economy_days = Table(
    "analytics_economy_days",
    metadata,
    Column("day", Integer, primary_key=True, autoincrement=False),
    *_counters("coins_sold", "topups", "coins_granted", "coins_spent"),
    *_counters("gifts", "coins_reversed", "gift_reversals"),
    *_counters("coins_refunded", "refunds", "coins_charged_back", "chargebacks"),
    *_counters("diamonds_earned", "diamonds_reversed", "diamonds_paid_out", "payouts"),
    # Subscriptions' periods (code ``subscription``): paid by the subscriber, and gifted.
    *_counters("subscription_coins", "subscriptions", "subscription_diamonds"),
    *_counters("gifted_subscription_coins", "gifted_subscriptions"),
)


# --- clips (migration 0008; docs/clips.md) ----------------------------------------------------

# A short video by a creator: uploaded, or cut from a stream recording by a background job. A
# row is ``ready`` only once its file is in the clip store (``video_key``); a cut is
# ``processing`` until its job stores the file, ``failed`` (no file) when it could not.
clips = Table(
    "clips",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("creator_id", BigInteger, nullable=False),
    Column("title", String(140), nullable=False),
    Column("status", String(16), nullable=False),
    Column("source", String(16), nullable=False),
    Column("video_key", String(255), nullable=True),
    Column("content_type", String(32), nullable=False),
    Column("size_bytes", BigInteger, nullable=False, server_default="0"),
    Column("duration_ms", BigInteger, nullable=False, server_default="0"),
    Column("width", Integer, nullable=False, server_default="0"),
    Column("height", Integer, nullable=False, server_default="0"),
    Column("has_audio", Boolean, nullable=False, server_default=text("false")),
    Column("downloads_enabled", Boolean, nullable=False, server_default=text("true")),
    Column("download_count", BigInteger, nullable=False, server_default="0"),
    Column("version", Integer, nullable=False, server_default="1"),
    Column("error", String(200), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    CheckConstraint("status IN ('processing', 'ready', 'failed')", name="ck_clips_status"),
    CheckConstraint("source IN ('upload', 'recording')", name="ck_clips_source"),
    Index("ix_clips_creator", "creator_id", "created_at_us"),
)

# A background job: a watermarked download of a clip's version (one per clip, kind and version:
# asking again reuses it), or the cut of a recording into a new clip. Rows are durable: a job
# found ``queued`` or ``running`` at start is run again from the beginning, its partial output
# deleted first.
clip_jobs = Table(
    "clip_jobs",
    metadata,
    Column("id", String(24), primary_key=True),
    Column("clip_id", String(24), nullable=False),
    Column("kind", String(8), nullable=False),
    Column("version", Integer, nullable=False),
    Column("status", String(8), nullable=False),
    Column("progress_pct", Integer, nullable=False, server_default="0"),
    Column("params", Text, nullable=False, server_default="{}"),
    Column("output_key", String(255), nullable=True),
    Column("output_bytes", BigInteger, nullable=False, server_default="0"),
    Column("error", String(200), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    UniqueConstraint("clip_id", "kind", "version", name="uq_clip_jobs_clip_kind_version"),
    CheckConstraint("kind IN ('render', 'cut')", name="ck_clip_jobs_kind"),
    CheckConstraint(
        "status IN ('queued', 'running', 'done', 'failed')", name="ck_clip_jobs_status"
    ),
    CheckConstraint("progress_pct BETWEEN 0 AND 100", name="ck_clip_jobs_progress"),
    Index("ix_clip_jobs_status", "status"),
)

# A user's public "shared" collection: the clips they reposted, newest first.
clip_reposts = Table(
    "clip_reposts",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("clip_id", String(24), primary_key=True),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_clip_reposts_user", "user_id", "created_at_us"),
    Index("ix_clip_reposts_clip", "clip_id"),
)

# One reaction per user, clip and emoji (from the fixed set in clips/reactions.py).
clip_reactions = Table(
    "clip_reactions",
    metadata,
    Column("clip_id", String(24), primary_key=True),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("emoji", String(16), primary_key=True),
    Column("created_at_us", BigInteger, nullable=False),
)

# Who follows whom (social/follows.py): a user's following list, a user's follower count.
follows = Table(
    "follows",
    metadata,
    Column("follower_id", BigInteger, primary_key=True, autoincrement=False),
    Column("followee_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_follows_followee", "followee_id"),
)

# One-use tickets that open a room's WebSocket as a user (identity/tickets.py): only a hash of
# each is kept, a few seconds; the socket deletes the row it uses, so one ticket opens one
# socket whichever node it reaches.
socket_tickets = Table(
    "socket_tickets",
    metadata,
    Column("ticket_hash", String(64), primary_key=True),
    Column("user_id", BigInteger, nullable=False),
    Column("stream_id", String(24), nullable=False),
    Column("expires_at_us", BigInteger, nullable=False),
    # The hash of the session it was asked with (migration 0018): the socket ends with it.
    Column("session_hash", String(64), nullable=True),
    Index("ix_socket_tickets_user", "user_id"),
    Index("ix_socket_tickets_expires", "expires_at_us"),
)

# Log-in and sign-up throttles (identity/throttle.py), in the database so that every server
# process and node counts the same attempts. ``key`` is "login:<sha256 of the login name>",
# "address:<client address>" or "register:<client address>"; ``attempts`` decay with time.
auth_throttles = Table(
    "auth_throttles",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("attempts", Integer, nullable=False),
    Column("blocked_until_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
    Index("ix_auth_throttles_updated", "updated_at_us"),
)

# Moderation beyond one room (live/moderation.py). The moderators a creator appoints act in
# every room of theirs; a ban keeps a user from chatting, liking and gifting in every room of
# the creator who banned them; a viewer's report keeps the reported line as it was shown.
room_moderators = Table(
    "room_moderators",
    metadata,
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_room_moderators_user", "user_id"),
)

room_bans = Table(
    "room_bans",
    metadata,
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("banned_by", BigInteger, nullable=False),
    Column("reason", String(200), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_room_bans_creator_time", "creator_id", "created_at_us"),
)

chat_reports = Table(
    "chat_reports",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("stream_id", String(24), nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("message_id", String(32), nullable=False),
    Column("reported_user_id", BigInteger, nullable=False),
    Column("reported_handle", String(32), nullable=False),
    Column("text", Text, nullable=False),
    Column("reporter_id", BigInteger, nullable=False),
    Column("reason", String(16), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    # One report per person and line: reporting it again answers the first report.
    UniqueConstraint("reporter_id", "stream_id", "message_id", name="uq_chat_reports_once"),
    Index("ix_chat_reports_creator_time", "creator_id", "created_at_us"),
    Index("ix_chat_reports_time", "created_at_us"),
)

# --- reconciliation (migration 0019; docs/economy.md, "Reconciliation") ----------------------

# The sandbox payment provider's own record of each payment (payments/sandbox.py), as a real
# provider keeps its side: what was paid, refunded and disputed, whatever giftwave heard.
sandbox_payments = Table(
    "sandbox_payments",
    metadata,
    Column("payment_id", String(40), primary_key=True),
    Column("session_id", String(64), nullable=False, unique=True),
    Column("order_id", String(40), nullable=False),
    Column("amount_minor", BigInteger, nullable=False),
    Column("currency", String(3), nullable=False),
    Column("status", String(16), nullable=False),  # succeeded | failed
    Column("refunded_minor", BigInteger, nullable=False, server_default="0"),
    Column("disputed", Boolean, nullable=False, server_default=text("false")),
    Column("created_at_us", BigInteger, nullable=False),
    Column("refunded_at_us", BigInteger, nullable=True),
    Column("disputed_at_us", BigInteger, nullable=True),
    Index("ix_sandbox_payments_time", "created_at_us"),
)

# Each `giftwave reconcile` run: when, against which provider, from when, what it counted and
# the first mismatches (bounded: economy/reconcile_runs.py). Only the newest runs are kept.
reconcile_runs = Table(
    "reconcile_runs",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("provider", String(16), nullable=False),
    Column("since_us", BigInteger, nullable=False),
    Column("started_at_us", BigInteger, nullable=False),
    Column("finished_at_us", BigInteger, nullable=False),
    Column("ledger_records", Integer, nullable=False),
    Column("provider_records", Integer, nullable=False),
    Column("mismatch_count", Integer, nullable=False),
    Column("counts_json", Text, nullable=False),
    Column("mismatches_json", Text, nullable=False),
)

# Subscriptions (economy/subscriptions.py, docs/economy.md "Subscriptions"): a creator's
# monthly price, within the operator's bounds.
subscription_prices = Table(
    "subscription_prices",
    metadata,
    Column("creator_id", BigInteger, primary_key=True),
    Column("price_coins", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# One row per (subscriber, creator), kept across lapses: ``period`` counts the periods charged
# (the transfer ids are ``sub:<id>:<period>``), ``paid_until_us`` is the end of the last one.
# Every change is a conditional UPDATE on ``period``/``status``: of several nodes, one wins.
subscriptions = Table(
    "subscriptions",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("subscriber_id", BigInteger, nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("price_coins", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # unpaid|active|grace|cancelled|lapsed|gifted
    Column("period", Integer, nullable=False),
    Column("paid_until_us", BigInteger, nullable=False),
    Column("next_attempt_us", BigInteger, nullable=False),
    Column("grace_until_us", BigInteger, nullable=True),
    Column("last_failure", String(40), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("cancelled_at_us", BigInteger, nullable=True),
    UniqueConstraint("subscriber_id", "creator_id", name="uq_subscriptions_pair"),
    Index("ix_subscriptions_creator", "creator_id", "status"),
    Index("ix_subscriptions_due", "status", "next_attempt_us"),
)

# One row per charged period, written by the ledger in the transaction of its transfers
# (ledger/annex.py): a row is there exactly when the period was paid.
subscription_periods = Table(
    "subscription_periods",
    metadata,
    Column("subscription_id", BigInteger, primary_key=True),
    Column("period", Integer, primary_key=True),
    Column("subscriber_id", BigInteger, nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("coins", BigInteger, nullable=False),
    Column("diamonds", BigInteger, nullable=False),
    Column("transfer_id", String(128), nullable=False, unique=True),
    Column("starts_at_us", BigInteger, nullable=False),
    Column("ends_at_us", BigInteger, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    # Who gave this period (a gifted subscription, economy/subscription_gifts.py); None: paid.
    Column("gifted_by", BigInteger, nullable=True),
    Index("ix_subscription_periods_creator_time", "creator_id", "created_at_us"),
)

# A viewer's purchase of ``count`` subscriptions in a live room, written by the ledger in the
# transaction of its transfers (ledger/annex.py): there exactly when they were paid.
# ``recipients``: the user ids drawn, comma separated, in the order of their transfers.
subscription_gifts = Table(
    "subscription_gifts",
    metadata,
    Column("buyer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("idempotency_key", String(64), primary_key=True),
    Column("stream_id", String(24), nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("count", Integer, nullable=False),
    Column("price_coins", BigInteger, nullable=False),
    Column("coins", BigInteger, nullable=False),
    Column("diamonds", BigInteger, nullable=False),
    Column("recipients", Text, nullable=False),
    Column("transfer_id", String(128), nullable=False, unique=True),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_subscription_gifts_creator_time", "creator_id", "created_at_us"),
)

# Each recipient's gifted period, given once: the key makes a second application a no-op.
subscription_gift_recipients = Table(
    "subscription_gift_recipients",
    metadata,
    Column("buyer_id", BigInteger, primary_key=True, autoincrement=False),
    Column("idempotency_key", String(64), primary_key=True),
    Column("recipient_id", BigInteger, primary_key=True, autoincrement=False),
    Column("subscription_id", BigInteger, nullable=False),
    Column("period", Integer, nullable=False),
    Column("applied_at_us", BigInteger, nullable=False),
)

# Viewers who do not want gifted subscriptions (everyone else may receive one: the default).
gifted_sub_optouts = Table(
    "gifted_sub_optouts",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at_us", BigInteger, nullable=False),
)

# Who has a room open, on any node: each node writes its logged-in viewers every few seconds
# (live/presence.py); a row older than the window is someone who left.
room_viewers = Table(
    "room_viewers",
    metadata,
    Column("stream_id", String(24), primary_key=True),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("seen_at_us", BigInteger, nullable=False),
    Index("ix_room_viewers_seen", "seen_at_us"),
)

# "Never miss it" (notify/, docs/notifications.md). A follower's opt-in to one creator's notices.
notify_optins = Table(
    "notify_optins",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("created_at_us", BigInteger, nullable=False),
    Index("ix_notify_optins_creator", "creator_id"),
)

# A user's notification settings: the IANA time zone their quiet hours are read in.
notify_settings = Table(
    "notify_settings",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("time_zone", String(64), nullable=False),
    Column("quiet_from_h", Integer, nullable=False),
    Column("quiet_to_h", Integer, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# A viewer's own spending limits (economy/spending.py), one row per period they limit: what
# is in force, what they typed in which unit, and a raise waiting out its cooling-off.
spending_limits = Table(
    "spending_limits",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("period", String(8), primary_key=True),  # day|week|month
    Column("limit_coins", BigInteger, nullable=True),  # NULL: none in force (a pending one)
    Column("unit", String(8), nullable=False),  # COIN, or the ISO currency the viewer chose
    Column("entered", BigInteger, nullable=True),  # in that unit (minor units of a currency)
    Column("pending_coins", BigInteger, nullable=True),  # NULL with a time: the limit removed
    Column("pending_unit", String(8), nullable=True),
    Column("pending_entered", BigInteger, nullable=True),
    Column("pending_at_us", BigInteger, nullable=True),  # when the raise applies
    Column("updated_at_us", BigInteger, nullable=False),
    CheckConstraint("period IN ('day', 'week', 'month')", name="ck_spending_limits_period"),
)

# A viewer's self-exclusion: no top-ups, gifts or paid messages, no renewals until it ends.
self_exclusions = Table(
    "self_exclusions",
    metadata,
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("starts_at_us", BigInteger, nullable=False),
    Column("ends_at_us", BigInteger, nullable=False),
)

# A browser's Web Push subscription (RFC 8030 endpoint, RFC 8291 keys) and its language.
push_subscriptions = Table(
    "push_subscriptions",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("endpoint", String(1024), nullable=False, unique=True),
    Column("p256dh", String(128), nullable=False),
    Column("auth", String(64), nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    # The language its notices are written in: the page's when it subscribed (migration 0032).
    Column("locale", String(8), nullable=False, server_default="en"),
    Index("ix_push_subscriptions_user", "user_id"),
)

# The inbox: one notice per (user, kind, subject) — one "went live" per stream per user.
notices = Table(
    "notices",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("user_id", BigInteger, nullable=False),
    Column("creator_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("pushed", Boolean, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("read_at_us", BigInteger, nullable=True),
    UniqueConstraint("user_id", "kind", "subject", name="uq_notices_subject"),
    Index("ix_notices_user", "user_id", "id"),
    Index("ix_notices_created", "created_at_us"),  # pruning (notify/pruning.py)
)

# The push queue: one job per (notice, subscription), claimed with a lease like the webhook
# outbox (notify/push_queue.py).
push_jobs = Table(
    "push_jobs",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("notice_id", BigInteger, nullable=False),
    Column("subscription_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending | sent | failed
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at_us", BigInteger, nullable=False),
    Column("last_status", Integer, nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    UniqueConstraint("notice_id", "subscription_id", name="uq_push_jobs_target"),
    Index("ix_push_jobs_due", "status", "next_attempt_at_us"),
    Index("ix_push_jobs_created", "created_at_us"),  # pruning (notify/pruning.py)
)

# The fan-out queue (migration 0029; notify/fanout.py): one row per notice to tell a creator's
# followers, worked off the request by any node's loop. ``after_user_id`` is how far it got
# (followers in id order, advanced in each chunk's transaction: a crash resumes, never repeats);
# ``lease_until_us`` the holder's lease, and its token. Unique per subject: told once.
notice_fanouts = Table(
    "notice_fanouts",
    metadata,
    Column("id", Id64, primary_key=True, autoincrement=True),
    Column("creator_id", BigInteger, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("subject", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("after_user_id", BigInteger, nullable=False),
    Column("status", String(16), nullable=False),  # pending | done
    Column("lease_until_us", BigInteger, nullable=False),
    Column("created_at_us", BigInteger, nullable=False),
    Column("done_at_us", BigInteger, nullable=True),
    UniqueConstraint("creator_id", "kind", "subject", name="uq_notice_fanouts_subject"),
    Index("ix_notice_fanouts_due", "status", "lease_until_us"),
)

# --- fan clubs (migration 0023; social/clubs.py, docs/community.md) --------------------------

# One club per creator: its name and the gift that is its entry fee (None: free to join). The
# chat mode of the creator's rooms is the creator's (creator_chat_settings, below).
fan_clubs = Table(
    "fan_clubs",
    metadata,
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("name", String(24), nullable=False),
    Column("entry_gift_id", String(32), nullable=True),
    Column("created_at_us", BigInteger, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# A member's standing: what they did for the club since joining (coins gifted, likes, seconds
# watched, each added off the gift path: social/club_points.py) and the points they make.
fan_club_members = Table(
    "fan_club_members",
    metadata,
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("entry_send_id", String(128), nullable=True),
    # False while the entry gift of a joining is on its way: not yet a member.
    Column("active", Boolean, nullable=False, server_default=text("true")),
    *_counters("gift_coins", "likes", "watch_s", "points"),
    Column("joined_at_us", BigInteger, nullable=False),
    Column("last_seen_at_us", BigInteger, nullable=False),
    # When watch time was last added: two nodes seeing one viewer add it once (club_points.py).
    Column("watched_at_us", BigInteger, nullable=False, server_default="0"),
    Index("ix_fan_club_members_points", "creator_id", "points"),
    Index("ix_fan_club_members_user", "user_id"),
)

# --- chat modes (migration 0031; social/chat_settings.py, docs/community.md) -----------------

# Who may chat in a creator's rooms (everyone, members, members at level N, subscribers): the
# creator's setting, with or without a fan club. No row: everyone.
creator_chat_settings = Table(
    "creator_chat_settings",
    metadata,
    Column("creator_id", BigInteger, primary_key=True, autoincrement=False),
    Column("mode", String(16), nullable=False),
    Column("min_level", Integer, nullable=False),
    Column("updated_at_us", BigInteger, nullable=False),
)

# A creator's one thank-you per ended stream (live/thanks.py, docs/community.md "Thanks"):
# the message as shown; ``hidden_by`` the creator or moderator who took it down.
stream_thanks = Table(
    "stream_thanks",
    metadata,
    Column("stream_id", String(24), primary_key=True),
    Column("creator_id", BigInteger, nullable=False),
    Column("message", Text, nullable=False),
    Column("to_all", Boolean, nullable=False),  # sent to every supporter shown, not chosen ones
    Column("created_at_us", BigInteger, nullable=False),
    Column("hidden_by", BigInteger, nullable=True),
    Index("ix_stream_thanks_creator", "creator_id", "created_at_us"),
)

# Who a thank-you went to: the supporters chosen, with their place and coins in that stream.
stream_thanks_recipients = Table(
    "stream_thanks_recipients",
    metadata,
    Column("stream_id", String(24), primary_key=True),
    Column("user_id", BigInteger, primary_key=True, autoincrement=False),
    Column("rank", Integer, nullable=False),
    Column("coins", BigInteger, nullable=False),
    Index("ix_stream_thanks_recipients_user", "user_id", "stream_id"),
)
