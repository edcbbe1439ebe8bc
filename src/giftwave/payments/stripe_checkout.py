"""Stripe through its official SDK: Checkout Sessions out, verified webhooks in.

Events giftwave acts on (configure the Stripe webhook endpoint with exactly these):

    checkout.session.completed                → succeeded when paid (payment id = the
                                                session's payment_intent); a session completed
                                                unpaid (a delayed payment method) is ignored:
                                                one of the next two events follows
    checkout.session.async_payment_succeeded  → succeeded
    checkout.session.async_payment_failed     → failed
    charge.refunded                           → refunded (amount_refunded is cumulative)
    charge.dispute.created                    → disputed

Any other event type is answered 400 ``unknown_event`` and changes nothing.

Amounts cross this boundary in Stripe's minor unit, which is not always giftwave's
(``money.py``): ``stripe_amount`` and ``giftwave_amount`` convert, both ways, exactly.

The SDK's objects are not dicts (v13+): the event is decoded from ``Event.to_dict()``, with
every field checked, so a surprising shape is ``malformed_webhook``, never a 500.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Awaitable, Mapping
from typing import Any, Final

import httpx
import stripe

from giftwave import money
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

SIGNATURE_HEADER: Final = "stripe-signature"
# A checkout is created while the buyer waits: give up long before the SDK's default of 80 s.
REQUEST_TIMEOUT_S: Final = 15.0
MAX_NETWORK_RETRIES: Final = 2

# Stripe's own minor unit per currency, the provider's contract (docs.stripe.com/currencies):
# two decimals unless listed. ISK is zero-decimal at Stripe but, for backwards compatibility,
# sent with two (5 ISK is 500, a multiple of 100); HUF and TWD charge with two as well.
STRIPE_ZERO_DECIMAL: Final = frozenset(
    {"BIF", "CLP", "DJF", "GNF", "JPY", "KMF", "KRW", "MGA"}
    | {"PYG", "RWF", "UGX", "VND", "VUV", "XAF", "XOF", "XPF"}
)
STRIPE_THREE_DECIMAL: Final = frozenset(["BHD", "JOD", "KWD", "OMR", "TND"])  # last digit 0


def stripe_exponent(currency: str) -> int:
    if currency in STRIPE_ZERO_DECIMAL:
        return 0
    return 3 if currency in STRIPE_THREE_DECIMAL else 2


def _shift(currency: str) -> tuple[int, int]:
    """(factor, +1) when Stripe's unit is finer than giftwave's, (factor, -1) when coarser."""
    digits = stripe_exponent(currency) - money.exponent(currency)
    return int(10 ** abs(digits)), 1 if digits >= 0 else -1


def stripe_amount(amount_minor: int, currency: str) -> int:
    """giftwave's amount (its minor unit) as Stripe's ``unit_amount``; ValueError when Stripe
    could not charge it exactly."""
    factor, direction = _shift(currency)
    if direction < 0 and amount_minor % factor:
        raise ValueError(f"{amount_minor} is finer than Stripe's {currency} unit")
    amount = amount_minor * factor if direction > 0 else amount_minor // factor
    if currency in STRIPE_THREE_DECIMAL and amount % 10:
        raise ValueError(f"Stripe charges {currency} in multiples of 10, not {amount}")
    return amount


def giftwave_amount(amount: int, currency: str) -> int:
    """Stripe's amount (its minor unit) in giftwave's; ValueError when it is not whole there."""
    factor, direction = _shift(currency)
    if direction > 0 and amount % factor:
        raise ValueError(f"{amount} is finer than giftwave's {currency} unit")
    return amount // factor if direction > 0 else amount * factor


_SESSION_EVENTS: Final = {
    "checkout.session.completed": PaymentEventKind.SUCCEEDED,
    "checkout.session.async_payment_succeeded": PaymentEventKind.SUCCEEDED,
    "checkout.session.async_payment_failed": PaymentEventKind.FAILED,
}


class _AsyncHttpx(stripe.HTTPClient):
    """The SDK's transport, async only, over httpx.

    The SDK's own ``HTTPXClient`` posts its form body as httpx's ``data=<str>``, deprecated
    (a DeprecationWarning on every request) and gone in httpx 1.0; so giftwave plugs in its
    own client, the SDK's documented extension point. Retries and backoff stay the SDK's.
    """

    name = "giftwave-httpx"

    def __init__(self, timeout_s: float) -> None:
        super().__init__()
        self._client = httpx.AsyncClient(
            timeout=timeout_s, verify=ssl.create_default_context(cafile=stripe.ca_bundle_path)
        )

    async def request_async(
        self, method: str, url: str, headers: Mapping[str, str], post_data: Any = None
    ) -> tuple[bytes, int, Mapping[str, str]]:
        try:
            response = await self._client.request(
                method, url, headers=dict(headers), content=post_data
            )
        except httpx.HTTPError as exc:
            raise stripe.APIConnectionError(  # type: ignore[no-untyped-call]
                f"Stripe could not be reached ({type(exc).__name__}: {exc})", should_retry=True
            ) from exc
        return response.content, response.status_code, response.headers

    def request(
        self,
        method: str,
        url: str,
        headers: Mapping[str, str] | None,
        post_data: Any = None,
        *,
        _usage: list[str] | None = None,
    ) -> tuple[str, int, Mapping[str, str]]:
        raise NotImplementedError("giftwave calls Stripe asynchronously only")

    def sleep_async(self, secs: float) -> Awaitable[None]:
        return asyncio.sleep(secs)

    def close(self) -> None:
        pass  # nothing synchronous to close

    async def close_async(self) -> None:
        await self._client.aclose()


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
        if not webhook_secret.strip():
            raise ValueError("the Stripe webhook signing secret is empty")
        base_addresses: Any = {"api": api_base.rstrip("/")} if api_base else None
        self._http = _AsyncHttpx(REQUEST_TIMEOUT_S)
        self._client = stripe.StripeClient(
            api_key,
            base_addresses=base_addresses,
            max_network_retries=MAX_NETWORK_RETRIES,
            http_client=self._http,
        )
        self._webhook_secret = webhook_secret
        self._tolerance_s = tolerance_s

    async def close(self) -> None:
        await self._http.close_async()

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        metadata = {"order_id": request.order_id, "user_id": str(request.user_id)}
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
            raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, f"Stripe: {exc}") from exc
        session_id = getattr(session, "id", None)
        url = getattr(session, "url", None)
        if not (isinstance(session_id, str) and session_id and isinstance(url, str) and url):
            raise ProviderUnavailable(Code.PROVIDER_UNAVAILABLE, "Stripe returned no checkout URL")
        return CheckoutSession(session_id, url)

    def parse_webhook(
        self, payload: bytes, headers: Mapping[str, str]
    ) -> PaymentEvent | IgnoredEvent:
        signature = headers.get(SIGNATURE_HEADER) or headers.get("Stripe-Signature")
        if not signature:
            raise WebhookRejected(Code.MISSING_SIGNATURE, "the webhook carries no Stripe-Signature")
        try:
            event = self._client.construct_event(
                payload, signature, self._webhook_secret, tolerance=self._tolerance_s
            )
            body = event.to_dict()
        except stripe.SignatureVerificationError as exc:
            # The SDK checks the signature before the timestamp; only its message tells which.
            code = Code.STALE_WEBHOOK if "tolerance" in str(exc) else Code.BAD_SIGNATURE
            raise WebhookRejected(code, f"Stripe signature: {exc}") from None
        except (ValueError, TypeError, AttributeError, KeyError) as exc:
            # Not UTF-8, not JSON, or JSON that is not an object.
            raise WebhookRejected(Code.MALFORMED_WEBHOOK, f"not a Stripe event: {exc}") from None
        return _decode(body)


def _malformed(detail: str) -> WebhookRejected:
    return WebhookRejected(Code.MALFORMED_WEBHOOK, f"unexpected event shape: {detail}")


def _text(obj: Mapping[str, Any], name: str) -> str:
    value = obj.get(name)
    if isinstance(value, Mapping):  # an expanded object: its id
        value = value.get("id")
    if not isinstance(value, str) or not value:
        raise _malformed(f"{name} is {value!r}")
    return value


def _amount(obj: Mapping[str, Any], name: str) -> int:
    """The amount ``name`` in giftwave's minor unit of the object's currency."""
    value = obj.get(name)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise _malformed(f"{name} is {value!r}")
    try:
        return giftwave_amount(value, _currency(obj))
    except ValueError as exc:
        raise _malformed(str(exc)) from None


def _currency(obj: Mapping[str, Any]) -> str:
    value = obj.get("currency")
    if not isinstance(value, str) or len(value) != 3 or not value.isalpha():
        raise _malformed(f"currency is {value!r}")
    return value.upper()


def _order_id(obj: Mapping[str, Any]) -> str | None:
    metadata = obj.get("metadata")
    found = metadata.get("order_id") if isinstance(metadata, Mapping) else None
    if not found:
        found = obj.get("client_reference_id")
    return found if isinstance(found, str) and found else None


def _decode(body: Mapping[str, Any]) -> PaymentEvent | IgnoredEvent:
    event_id = body.get("id")
    event_type = body.get("type")
    data = body.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not (isinstance(event_id, str) and event_id and isinstance(event_type, str)):
        raise _malformed("the event has no id or type")
    if not isinstance(obj, Mapping):
        raise _malformed("the event has no data.object")

    if event_type in _SESSION_EVENTS:
        payment_status = obj.get("payment_status")
        if event_type == "checkout.session.completed" and payment_status != "paid":
            # A delayed payment method (a bank debit): async_payment_succeeded or _failed
            # follows. Acknowledge it, or Stripe would redeliver it for days.
            return IgnoredEvent(
                "stripe", event_id, f"checkout completed with payment_status {payment_status!r}"
            )
        return PaymentEvent(
            provider="stripe",
            event_id=event_id,
            kind=_SESSION_EVENTS[event_type],
            payment_id=_text(obj, "payment_intent"),
            order_id=_order_id(obj),
            amount_minor=_amount(obj, "amount_total"),
            currency=_currency(obj),
        )
    if event_type == "charge.refunded":
        return PaymentEvent(
            provider="stripe",
            event_id=event_id,
            kind=PaymentEventKind.REFUNDED,
            payment_id=_text(obj, "payment_intent"),
            order_id=_order_id(obj),
            amount_minor=_amount(obj, "amount_refunded"),
            currency=_currency(obj),
        )
    if event_type == "charge.dispute.created":
        return PaymentEvent(
            provider="stripe",
            event_id=event_id,
            kind=PaymentEventKind.DISPUTED,
            payment_id=_text(obj, "payment_intent"),
            order_id=None,
            amount_minor=_amount(obj, "amount"),
            currency=_currency(obj),
        )
    raise WebhookRejected(Code.UNKNOWN_EVENT, f"giftwave does not handle {event_type!r}")
