"""Stripe through its official SDK: Checkout Sessions out, verified webhooks in.

Events giftwave acts on (configure the Stripe webhook endpoint with exactly these):

    checkout.session.completed   → succeeded (payment id = the session's payment_intent)
    checkout.session.async_payment_failed → failed
    charge.refunded              → refunded (amount_refunded is cumulative)
    charge.dispute.created       → disputed

Any other event type is answered 400 ``unknown_event`` and changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import stripe

from giftwave.payments.base import (
    CheckoutRequest,
    CheckoutSession,
    PaymentEvent,
    PaymentEventKind,
    ProviderUnavailable,
    WebhookRejected,
)

SIGNATURE_HEADER: Final = "stripe-signature"


class StripeProvider:
    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        tolerance_s: int,
        api_base: str | None = None,
    ) -> None:
        base_addresses: Any = {"api": api_base} if api_base else None
        self._client = stripe.StripeClient(
            api_key, base_addresses=base_addresses, max_network_retries=2
        )
        self._webhook_secret = webhook_secret
        self._tolerance_s = tolerance_s

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {"order_id": request.order_id, "user_id": str(request.user_id)}
        params: Any = {
            "mode": "payment",
            "line_items": [
                {
                    "quantity": 1,
                    "price_data": {
                        "currency": request.currency.lower(),
                        "unit_amount": request.amount_minor,
                        "product_data": {"name": f"{request.coins:,} coins"},
                    },
                }
            ],
            "client_reference_id": request.order_id,
            "metadata": metadata,
            # Copied onto the PaymentIntent, so refunds and disputes can name the order too.
            "payment_intent_data": {"metadata": metadata},
            "success_url": request.success_url,
            "cancel_url": request.cancel_url,
        }
        try:
            session = await self._client.v1.checkout.sessions.create_async(
                params, {"idempotency_key": f"checkout:{request.order_id}"}
            )
        except stripe.StripeError as exc:
            raise ProviderUnavailable("provider_unavailable", f"Stripe: {exc}") from exc
        if not session.url:
            raise ProviderUnavailable("provider_unavailable", "Stripe returned no checkout URL")
        return CheckoutSession(session.id, session.url)

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        signature = headers.get(SIGNATURE_HEADER) or headers.get("Stripe-Signature")
        if not signature:
            raise WebhookRejected("missing_signature", "the webhook carries no Stripe-Signature")
        try:
            event = self._client.construct_event(
                payload, signature, self._webhook_secret, tolerance=self._tolerance_s
            )
        except stripe.SignatureVerificationError as exc:
            code = "stale_webhook" if "tolerance" in str(exc) else "bad_signature"
            raise WebhookRejected(code, f"Stripe signature: {exc}") from None
        except ValueError as exc:
            raise WebhookRejected("malformed_webhook", f"not a Stripe event: {exc}") from None
        try:
            return _decode(event.id, event.type, event.data.object)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise WebhookRejected("malformed_webhook", f"unexpected event shape: {exc}") from None


def _decode(event_id: str, event_type: str, obj: Any) -> PaymentEvent:
    def field(name: str) -> Any:
        return obj[name]

    if event_type in ("checkout.session.completed", "checkout.session.async_payment_failed"):
        if event_type == "checkout.session.completed" and field("payment_status") != "paid":
            # Delayed payment methods complete unpaid and succeed later, as another event.
            raise WebhookRejected("unknown_event", "a checkout completed without payment yet")
        metadata = field("metadata") or {}
        return PaymentEvent(
            provider="stripe",
            event_id=event_id,
            kind=PaymentEventKind.SUCCEEDED
            if event_type == "checkout.session.completed"
            else PaymentEventKind.FAILED,
            payment_id=str(field("payment_intent")),
            order_id=metadata.get("order_id") or field("client_reference_id"),
            amount_minor=int(field("amount_total")),
            currency=str(field("currency")).upper(),
        )
    if event_type == "charge.refunded":
        metadata = field("metadata") or {}
        return PaymentEvent(
            provider="stripe",
            event_id=event_id,
            kind=PaymentEventKind.REFUNDED,
            payment_id=str(field("payment_intent")),
            order_id=metadata.get("order_id"),
            amount_minor=int(field("amount_refunded")),
            currency=str(field("currency")).upper(),
        )
    if event_type == "charge.dispute.created":
        return PaymentEvent(
            provider="stripe",
            event_id=event_id,
            kind=PaymentEventKind.DISPUTED,
            payment_id=str(field("payment_intent")),
            order_id=None,
            amount_minor=int(field("amount")),
            currency=str(field("currency")).upper(),
        )
    raise WebhookRejected("unknown_event", f"giftwave does not handle {event_type!r}")
