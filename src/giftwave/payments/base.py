"""The provider boundary: plain dataclasses in and out, vendor errors translated here.

PaymentError
├── WebhookRejected     a webhook that must change nothing: bad signature, stale, malformed,
│                       unknown event (``code`` says which; answered with a 4xx)
└── ProviderUnavailable the provider could not be reached or refused a checkout

A verified delivery giftwave has nothing to do with yet (a checkout completed by a delayed
payment method, which is paid or fails later as another event) is an ``IgnoredEvent``: answered
2xx so the provider stops retrying it, and stored nowhere.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

from giftwave.errors import Code


class PaymentError(Exception):
    code = Code.PAYMENT_ERROR

    def __init__(self, code: Code, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


class WebhookRejected(PaymentError):
    pass


class ProviderUnavailable(PaymentError):
    pass


class PaymentEventKind(enum.StrEnum):
    SUCCEEDED = "succeeded"  # the payment is captured: credit the coins
    FAILED = "failed"  # the buyer's payment did not go through
    REFUNDED = "refunded"  # amount_minor: the total refunded so far (cumulative)
    DISPUTED = "disputed"  # a chargeback was opened: claw everything back


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    provider: str
    event_id: str
    kind: PaymentEventKind
    payment_id: str
    order_id: str | None
    amount_minor: int
    currency: str
    # The card the provider charged or declined, as its stable fingerprint (the same card on
    # any account gives the same one): what the risk rules count. None: not reported.
    card_fingerprint: str | None = None


@dataclass(frozen=True, slots=True)
class IgnoredEvent:
    provider: str
    event_id: str
    reason: str


@dataclass(frozen=True, slots=True)
class CheckoutRequest:
    order_id: str
    user_id: int
    coins: int
    amount_minor: int
    currency: str
    success_url: str
    cancel_url: str
    site_url: str  # where this giftwave is reachable, for a provider page it serves itself


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    session_id: str
    url: str


class PaymentProvider(Protocol):
    name: str

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession: ...

    def parse_webhook(
        self, payload: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent | IgnoredEvent:
        """Verify and decode one delivery, or raise ``WebhookRejected``."""
        ...
