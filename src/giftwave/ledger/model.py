"""The money model: assets, accounts, transfers and what a submitted transfer came to.

Integers only, in minor units, with the unit in the name. Transfers are immutable; a
correction is a new transfer that points at the one it reverses.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass
from typing import Final, NamedTuple

# The largest amount one transfer may carry: the column is a signed 64-bit integer and an
# account's running sums must never overflow it either.
AMOUNT_MAX: Final = 2**62
# Client-chosen ids: short, printable, safe in URLs and logs.
TRANSFER_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}")
ACCOUNT_NAME_RE: Final = re.compile(r"[a-z0-9][a-z0-9_.:\-]{0,127}")
# CDIAMOND: hundredths of a diamond, what a creator rate below 100 per 100 coins leaves over
# from a gift (economy/diamond_fractions.py).
ASSET_RE: Final = re.compile(r"COIN|DIAMOND|CDIAMOND|[A-Z]{3}")


class TransferCode(enum.StrEnum):
    TOPUP = "topup"
    GIFT = "gift"
    PAYOUT = "payout"
    REFUND = "refund"
    CHARGEBACK = "chargeback"
    ADJUSTMENT = "adjustment"
    SUBSCRIPTION = "subscription"  # a subscription's period, paid like a gift
    FEE = "fee"  # a provider's fee, an expense of the platform


# Clawbacks must reach an account even while it is frozen: freezing is how a debt is enforced.
CODES_ALLOWED_WHEN_FROZEN: Final = frozenset(
    {TransferCode.REFUND, TransferCode.CHARGEBACK, TransferCode.ADJUSTMENT}
)


class TransferKind(enum.StrEnum):
    POSTED = "posted"  # moves the amount now
    PENDING = "pending"  # reserves the amount (two-phase, first phase)
    POST_PENDING = "post_pending"  # completes a pending transfer, fully or partly
    VOID_PENDING = "void_pending"  # releases a pending transfer (also what expiry does)


class AccountFlags(enum.IntFlag):
    NONE = 0
    NO_OVERDRAFT = 1  # debits (posted + pending) may never exceed posted credits
    FROZEN = 2  # no gifts, top-ups or payouts; clawbacks still land


class Transfer(NamedTuple):
    """A request to move ``amount`` of one asset from the debit to the credit account.

    ``linked`` chains this transfer to the next one in the same submission: the chain
    succeeds or fails as a whole. For post/void of a pending transfer, the accounts may be 0
    (taken from the pending transfer) and a void's amount may be 0 (the whole reservation).
    ``debit_limit`` (0: none) is a condition, not a field of the movement: the debit account's
    net debits (posted and pending debits less posted credits) after this transfer may not
    exceed it. It is not stored, so a replay is judged without it. A gift's daily spend leg
    carries the cap in force (economy/gifting.py): the cap is checked in the batch's own
    transaction, which every node's batches serialize on, so it holds across nodes.
    """

    id: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    code: TransferCode
    linked: bool = False
    kind: TransferKind = TransferKind.POSTED
    pending_id: str | None = None
    reverses_id: str | None = None
    timeout_s: int = 0
    debit_limit: int = 0


class Outcome(enum.StrEnum):
    """What one submitted transfer came to. Every value is a stable public code."""

    OK = "ok"
    EXISTS = "exists"
    INVALID_ID = "invalid_id"
    INVALID_CODE = "invalid_code"
    INVALID_KIND = "invalid_kind"
    AMOUNT_MUST_BE_POSITIVE = "amount_must_be_positive"
    AMOUNT_TOO_LARGE = "amount_too_large"
    ACCOUNTS_MUST_BE_DIFFERENT = "accounts_must_be_different"
    DEBIT_ACCOUNT_NOT_FOUND = "debit_account_not_found"
    CREDIT_ACCOUNT_NOT_FOUND = "credit_account_not_found"
    ASSET_MISMATCH = "asset_mismatch"
    DEBIT_ACCOUNT_FROZEN = "debit_account_frozen"
    CREDIT_ACCOUNT_FROZEN = "credit_account_frozen"
    INSUFFICIENT_FUNDS = "insufficient_funds"
    EXCEEDS_DEBIT_LIMIT = "exceeds_debit_limit"
    INVALID_DEBIT_LIMIT = "invalid_debit_limit"
    ID_REUSED_WITH_DIFFERENT_FIELDS = "id_reused_with_different_fields"
    TIMEOUT_REQUIRES_PENDING = "timeout_requires_pending"
    INVALID_TIMEOUT = "invalid_timeout"
    PENDING_ID_REQUIRED = "pending_id_required"
    PENDING_ID_MUST_BE_BLANK = "pending_id_must_be_blank"
    PENDING_TRANSFER_NOT_FOUND = "pending_transfer_not_found"
    PENDING_TRANSFER_NOT_PENDING = "pending_transfer_not_pending"
    PENDING_TRANSFER_ALREADY_POSTED = "pending_transfer_already_posted"
    PENDING_TRANSFER_ALREADY_VOIDED = "pending_transfer_already_voided"
    PENDING_TRANSFER_EXPIRED = "pending_transfer_expired"
    PENDING_TRANSFER_HAS_DIFFERENT_ACCOUNTS = "pending_transfer_has_different_accounts"
    PENDING_TRANSFER_HAS_DIFFERENT_CODE = "pending_transfer_has_different_code"
    EXCEEDS_PENDING_AMOUNT = "exceeds_pending_amount"
    VOID_AMOUNT_MUST_MATCH_PENDING = "void_amount_must_match_pending"
    REVERSED_TRANSFER_NOT_FOUND = "reversed_transfer_not_found"
    LINKED_EVENT_FAILED = "linked_event_failed"
    LINKED_EVENT_CHAIN_OPEN = "linked_event_chain_open"

    @property
    def succeeded(self) -> bool:
        return self is Outcome.OK or self is Outcome.EXISTS


@dataclass(slots=True)
class Account:
    """An account row: its identity, flags and the four running sums (TigerBeetle's model)."""

    id: int
    name: str
    asset: str
    owner: str
    flags: AccountFlags
    debits_pending: int = 0
    debits_posted: int = 0
    credits_pending: int = 0
    credits_posted: int = 0

    @property
    def balance(self) -> int:
        """Posted credits minus posted debits: what a credit-normal account (a wallet) holds."""
        return self.credits_posted - self.debits_posted

    @property
    def available(self) -> int:
        """What a no-overdraft account can still spend: pending debits are already reserved."""
        return self.credits_posted - self.debits_posted - self.debits_pending


class StoredTransfer(NamedTuple):
    """A transfer as committed: accounts and amount resolved, placed in the hash chain."""

    seq: int
    id: str
    debit_account_id: int
    credit_account_id: int
    amount: int
    asset: str
    code: str
    kind: str
    pending_id: str | None
    reverses_id: str | None
    timeout_s: int
    expires_at_us: int | None
    batch_seq: int
    created_at_us: int


TRANSFER_COLUMNS: Final = StoredTransfer._fields


def is_valid_transfer_id(value: object) -> bool:
    return isinstance(value, str) and TRANSFER_ID_RE.fullmatch(value) is not None
