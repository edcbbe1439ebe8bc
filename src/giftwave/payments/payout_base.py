"""The payout provider boundary: where diamonds become money in a creator's bank account.

Beside the payment provider (payments/base.py), in the same shape: plain dataclasses in and
out, vendor errors translated here, webhooks verified before anything is read from them.

PaymentError (payments/base.py)
├── WebhookRejected     a delivery that must change nothing: bad signature, stale, malformed,
│                       unknown event (answered with a 4xx)
└── ProviderUnavailable the provider refused or could not be reached; nothing was created
    └── ProviderTimeout the call's outcome is unknown (the request may have been taken): only
                        a retry with the same idempotency key finds out, and never pays twice
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from giftwave.payments.base import IgnoredEvent, ProviderUnavailable


class ProviderTimeout(ProviderUnavailable):
    pass


class CrossBorderUnsupported(Exception):
    """The provider cannot pay an account in ``country`` from the platform's country."""

    def __init__(self, country: str, platform_country: str) -> None:
        super().__init__(f"no payouts to {country} from {platform_country}")
        self.country = country
        self.platform_country = platform_country


@dataclass(frozen=True, slots=True)
class PayeeAccount:
    """What the provider says of a payee's account: one whole report, never a change."""

    account_id: str
    details_submitted: bool
    payouts_enabled: bool
    requirements_due: tuple[str, ...]  # what the provider still needs, by its own names
    disabled_reason: str | None
    version: int  # the provider's order of its reports: a higher one is newer


@dataclass(frozen=True, slots=True)
class PayeeAccountUpdated:
    provider: str
    event_id: str
    account: PayeeAccount


class TransferEventKind(enum.StrEnum):
    PAID = "paid"  # the money reached the payee's bank
    FAILED = "failed"  # it did not (closed account, wrong details): the money came back
    REVERSED = "reversed"  # taken back after it was made


@dataclass(frozen=True, slots=True)
class TransferEvent:
    provider: str
    event_id: str
    kind: TransferEventKind
    transfer_id: str
    payout_id: str  # the transfer's idempotency key, which is giftwave's payout id
    amount_minor: int
    currency: str
    reason: str | None  # the provider's words for a failure or a reversal
    # What the provider charged the platform for the transfer, in its currency's minor unit:
    # reported when it is paid (0 otherwise, and for a provider that charges nothing).
    fee_minor: int = 0


PayoutWebhook = PayeeAccountUpdated | TransferEvent | IgnoredEvent


@dataclass(frozen=True, slots=True)
class TransferRequest:
    payout_id: str  # the idempotency key: the same payout is never paid twice
    account_id: str
    amount_minor: int
    currency: str
    # The account's own currency when the provider converts what is sent into it (a
    # cross-border account); None: the payee is paid in ``currency``.
    payee_currency: str | None = None


@dataclass(frozen=True, slots=True)
class ProviderTransfer:
    transfer_id: str
    payout_id: str
    amount_minor: int
    currency: str
    fee_minor: int = 0  # known once the transfer is paid (the event carries it)
    # After the provider's conversion (``TransferRequest.payee_currency``): what the payee's
    # account received, and the provider's rate (sent → received, millionths).
    received_amount_minor: int | None = None
    received_currency: str | None = None
    fx_rate_micros: int | None = None


class PayoutProvider(Protocol):
    name: str

    def service_agreement(self, country: str) -> str | None:
        """What an account in ``country`` is opened under at the provider (None: its own
        default); ``CrossBorderUnsupported`` where it cannot pay there at all."""
        ...

    async def create_account(
        self, creator_id: int, country: str, currency: str, service_agreement: str | None = None
    ) -> PayeeAccount:
        """The creator's account (the same one again for the same creator)."""
        ...

    async def onboarding_link(self, account_id: str, site_url: str, return_url: str) -> str:
        """Where the creator gives the provider what it needs; it sends them back to
        ``return_url``. Short-lived: ask for a new one each time."""
        ...

    async def get_account(self, account_id: str) -> PayeeAccount: ...

    async def create_transfer(self, request: TransferRequest) -> ProviderTransfer:
        """Send money to the payee; the same ``payout_id`` again answers the same transfer."""
        ...

    async def take_back(self, event: TransferEvent) -> None:
        """After a ``FAILED`` event, bring the money back from wherever the failure left it
        (at Stripe, in the payee's own balance: the transfer is reversed), before giftwave
        gives the diamonds back; nothing where a failure returns the money by itself. The same
        event again takes nothing twice."""
        ...

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PayoutWebhook:
        """Verify and decode one delivery, or raise ``WebhookRejected``."""
        ...
