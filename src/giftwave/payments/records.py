"""What reconciliation compares: money movements as plain records, one shape for both sides.

The ledger's side (economy/reconcile_ledger.py) and each provider's side (the sandboxes'
stores, Stripe's listings) are read into the same ``Record``: a kind of movement, the
reference both sides know it by, its amount in giftwave's minor unit of its currency, and its
state. One record per (kind, reference) and side: a source sums what it must (a payment's
refunds) before it answers. A new kind of movement (the fees of a payout) is one more
``RecordKind`` and one more lister on each side; the comparison does not change.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Protocol


class RecordKind(enum.StrEnum):
    TOPUP = "topup"  # a payment captured: reference = the provider's payment id
    REFUND = "refund"  # every refund of a payment, summed: reference = the payment id
    DISPUTE = "dispute"  # a chargeback on a payment: reference = the payment id
    PAYOUT = "payout"  # a transfer to a payee: reference = giftwave's payout id (its key)
    FEE = "fee"  # what the provider charged: reference = what the fee was charged on
    # What the provider billed the platform's balance for its service (Stripe Connect's
    # payout, account and volume fees): reference = the provider's own record of the bill.
    PROVIDER_FEE = "provider_fee"


class TopupState(enum.StrEnum):
    """Where a captured payment ended: a dispute wins over refunds."""

    PAID = "paid"
    PARTLY_REFUNDED = "partly_refunded"
    REFUNDED = "refunded"
    DISPUTED = "disputed"


class PayoutState(enum.StrEnum):
    PROCESSING = "processing"  # sent, not ended yet
    PAID = "paid"
    RETURNED = "returned"  # failed or reversed: the money came back
    # Part of it taken back at the provider (Stripe: a transfer partially reversed): the
    # ledger never ends a payout so, so this always shows as a mismatch an operator settles.
    PARTLY_REVERSED = "partly_reversed"


# Refunds, disputes and fees have no life of their own here: they happened.
DONE = "done"


@dataclass(frozen=True, slots=True)
class Record:
    kind: RecordKind
    reference: str
    amount_minor: int
    currency: str
    state: str
    at_us: int  # when it happened on this side: what ``--since`` is compared with


def topup_state(amount_minor: int, refunded_minor: int, disputed: bool) -> TopupState:
    """The state of a payment of ``amount_minor`` with these refunds and disputes: the same
    rule on both sides, so that only a real difference shows."""
    if disputed:
        return TopupState.DISPUTED
    if refunded_minor >= amount_minor > 0:
        return TopupState.REFUNDED
    if refunded_minor > 0:
        return TopupState.PARTLY_REFUNDED
    return TopupState.PAID


@dataclass(frozen=True, slots=True)
class ProviderFee:
    """A fee the payout provider billed the platform's balance, as its own record says.

    ``amount_minor`` is in giftwave's minor unit: positive a charge, negative a credit back.
    ``payout_id`` names the giftwave payout it was charged for when the record says (its
    source is one of giftwave's transfers or payouts); a bill for a period names none.
    """

    reference: str  # the provider's id of the record (Stripe: the balance transaction)
    amount_minor: int
    currency: str
    fee_type: str  # the provider's words: "Payout Fee", "Active Account Billing", ...
    period: str | None  # the period billed, as the provider wrote it
    payout_id: str | None
    at_us: int

    def record(self) -> Record:
        return Record(
            RecordKind.PROVIDER_FEE,
            self.reference,
            self.amount_minor,
            self.currency,
            DONE,
            self.at_us,
        )


class ProviderFeeSource(Protocol):
    """Where the payout provider's bills to the platform are listed."""

    name: str

    async def fees(self, since_us: int) -> list[ProviderFee]:
        """Every fee billed from ``since_us`` on (a source may answer more)."""
        ...


class RecordSource(Protocol):
    """A provider's side of the books, read back from it."""

    name: str

    async def records(self, since_us: int) -> list[Record]:
        """Every movement at the provider from ``since_us`` on (a source may answer more)."""
        ...
