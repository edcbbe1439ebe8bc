"""Stripe through its official SDK: Checkout Sessions out, verified webhooks in.

Events giftwave acts on (configure the Stripe webhook endpoint with exactly these):

    checkout.session.completed                → succeeded when paid (payment id = the
                                                session's payment_intent); a session completed
                                                unpaid (a delayed payment method) is ignored:
                                                one of the next two events follows
    checkout.session.async_payment_succeeded  → succeeded
    checkout.session.async_payment_failed     → failed
    charge.refunded                           → refunded (amount_refunded is cumulative)
    charge.failed                             → failed (a declined card, counted by the risk rules)
    charge.dispute.created                    → disputed

Any other event type is answered 400 ``unknown_event`` and changes nothing.

The SDK's client, signature checks, amounts in Stripe's minor unit and the checked reading of
fields are shared with the Connect adapter (``stripe_sdk.py``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import stripe

from giftwave.errors import Code
from giftwave.payments.base import (
    CheckoutRequest,
    CheckoutSession,
    IgnoredEvent,
    PaymentEvent,
    PaymentEventKind,
    ProviderUnavailable,
    WebhookRejected,
)
from giftwave.payments.stripe_sdk import (
    REQUEST_TIMEOUT_S,
    StripeApi,
    amount,
    currency,
    event_parts,
    metadata,
    stripe_amount,
    text,
)

_SESSION_EVENTS: Final = {
    "checkout.session.completed": PaymentEventKind.SUCCEEDED,
    "checkout.session.async_payment_succeeded": PaymentEventKind.SUCCEEDED,
    "checkout.session.async_payment_failed": PaymentEventKind.FAILED,
}


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        tolerance_s: int,
        api_base: str | None = None,
        request_timeout_s: float = REQUEST_TIMEOUT_S,
    ) -> None:
        if not webhook_secret.strip():
            raise ValueError("the Stripe webhook signing secret is empty")
        self._api = StripeApi(api_key, timeout_s=request_timeout_s, api_base=api_base)
        self._client = self._api.client
        self._webhook_secret = webhook_secret
        self._tolerance_s = tolerance_s

    async def close(self) -> None:
        await self._api.close()

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        meta = {"order_id": request.order_id, "user_id": str(request.user_id)}
        try:
            unit_amount = stripe_amount(request.amount_minor, request.currency)
        except ValueError as exc:
            raise ProviderUnavailable(Code.AMOUNT_NOT_CHARGEABLE, f"Stripe: {exc}") from None
        params: Any = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": unit_amount,
                        "product_data": {"name": f"{request.coins:,} coins"},
                    },
                }
            ],
            "client_reference_id": request.order_id,
            "metadata": meta,
            # Copied onto the PaymentIntent, so refunds and disputes can name the order too.
            "payment_intent_data": {"metadata": meta},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": f"checkout:{request.order_id}"}
            )
        except stripe.StripeError as exc:
            raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, f"Stripe: {exc}") from exc
        session_id = getattr(session, "id", None)
        url = getattr(session, "url", None)
        if not (isinstance(session_id, str) and session_id and isinstance(url, str) and url):
            raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, "Stripe returned no checkout URL")
        return CheckoutSession(session_id, url)

    def parse_webhook(
        self, payload: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent | IgnoredEvent:
        body = self._api.verified_event(
            payload, headers, (self._webhook_secret,), self._tolerance_s
        )
        return _decode(body)


def card_fingerprint(charge: Mapping[str, Any]) -> str | None:
    """A Charge's ``payment_method_details.card.fingerprint``: the same card number gives the
    same value on every account (Stripe's Charge object); None when it is not a card."""
    details = charge.get("payment_method_details")
    card = details.get("card") if isinstance(details, Mapping) else None
    found = card.get("fingerprint") if isinstance(card, Mapping) else None
    return found if isinstance(found, str) and 0 < len(found) <= 64 else None


def _order_id(obj: Mapping[str, Any]) -> str | None:
    found = metadata(obj, "order_id")
    if not found:
        found = obj.get("client_reference_id")
    return found if isinstance(found, str) and found else None


# The charge events giftwave reads: their kind, the field that holds the amount, and whether the
# object is a Charge (it carries the order's metadata and the card) rather than a Dispute.
_CHARGE_EVENTS: Final = {
    "charge.refunded": (PaymentEventKind.REFUNDED, "amount_refunded", True),
    # A declined card: the checkout stays open (the buyer may try another card), but the
    # attempt is what the card-testing rule counts (docs/risk.md).
    "charge.failed": (PaymentEventKind.FAILED, "amount", True),
    "charge.dispute.created": (PaymentEventKind.DISPUTED, "amount", False),
}


def _decode(body: Mapping[str, Any]) -> PaymentEvent | IgnoredEvent:
    event_id, event_type, obj = event_parts(body)
    if event_type in _SESSION_EVENTS:
        payment_status = obj.get("payment_status")
        if event_type == "checkout.session.completed" and payment_status != "paid":
            # A delayed payment method (a bank debit): async_payment_succeeded or _failed
            # follows. Acknowledge it, or Stripe would redeliver it for days.
            return IgnoredEvent(
                "stripe", event_id, f"checkout completed with payment_status {payment_status!r}"
            )
        return _payment_event(
            event_id, obj, _SESSION_EVENTS[event_type], "amount_total", of_order=True, card=False
        )
    if event_type in _CHARGE_EVENTS:
        kind, amount_field, of_charge = _CHARGE_EVENTS[event_type]
        return _payment_event(event_id, obj, kind, amount_field, of_order=of_charge, card=of_charge)
    raise WebhookRejected(Code.UNKNOWN_EVENT, f"giftwave does not handle {event_type!r}")


def _payment_event(
    event_id: str,
    obj: Mapping[str, Any],
    kind: PaymentEventKind,
    amount_field: str,
    *,
    of_order: bool,
    card: bool,
) -> PaymentEvent:
    """One way to read an event's object, so that a field is checked alike in every event (and
    in the same order: the first malformed one is the one named)."""
    return PaymentEvent(
        provider="stripe",
        event_id=event_id,
        kind=kind,
        payment_id=text(obj, "payment_intent"),
        order_id=_order_id(obj) if of_order else None,
        amount_minor=amount(obj, amount_field),
        currency=currency(obj),
        card_fingerprint=card_fingerprint(obj) if card else None,
    )
