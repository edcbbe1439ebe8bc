"""The sandbox provider: a checkout page served by giftwave itself, for demos and tests.

It behaves like a real provider where it matters: the page only asks; what moves coins is a
signed webhook delivered over HTTP to ``/v1/payments/webhooks/sandbox``, retried with backoff
until giftwave answers 2xx, and verified like any other. The page can pay, decline, refund
(fully or partly) and dispute a payment — the last two are what a bank would do later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode, urlsplit

import httpx
import orjson

from giftwave.errors import Code
from giftwave.payments.base import (
    CheckoutRequest,
    CheckoutSession,
    PaymentEvent,
    PaymentEventKind,
    WebhookRejected,
)
from giftwave.payments.sender import SignedSender
from giftwave.payments.signing import SIGNATURE_HEADER, verified_event

__all__ = ["SIGNATURE_HEADER", "WEBHOOK_PATH", "SandboxProvider"]

WEBHOOK_PATH: Final = "/v1/payments/webhooks/sandbox"


class SandboxProvider:
    name = "sandbox"

    def __init__(
        self, *, secret: str, tolerance_s: int, client: httpx.AsyncClient, webhook_url: str
    ) -> None:
        self._secret = secret
        self._tolerance_s = tolerance_s
        self._sender = SignedSender(secret=secret, client=client, url=webhook_url)

    async def create_checkout(self, request: CheckoutRequest) -> CheckoutSession:
        session_id = "cs_sb_" + secrets.token_urlsafe(18)
        url = f"{request.site_url}/sandbox/checkout/{session_id}"
        # Like a real provider, the page sends the buyer back where they came from (a room, or
        # the shop); it keeps no state, so the way back rides in its own address.
        back = urlsplit(request.success_url).path
        if back and back != "/shop":
            url += "?" + urlencode({"back": back})
        return CheckoutSession(session_id, url)

    def payment_id(self, session_id: str) -> str:
        """The payment a session becomes: derived, so every node names it the same."""
        mac = hmac.new(self._secret.encode(), session_id.encode(), hashlib.sha256).hexdigest()
        return "pi_sb_" + mac[:24]

    def event_payload(
        self,
        kind: PaymentEventKind,
        session_id: str,
        order_id: str,
        amount_minor: int,
        currency: str,
    ) -> bytes:
        event = {
            "id": "evt_sb_" + secrets.token_urlsafe(12),
            "type": f"payment.{kind.value}",
            "data": {
                "payment_id": self.payment_id(session_id),
                "order_id": order_id,
                "amount_minor": amount_minor,
                "currency": currency,
            },
        }
        return orjson.dumps(event)

    async def deliver(self, payload: bytes) -> bool:
        """Deliver one event now, retried in the background (payments/sender.py); True when
        the first attempt was accepted."""
        return await self._sender.deliver(payload)

    async def close(self) -> None:
        await self._sender.close()

    def parse_webhook(self, payload: bytes, headers: Mapping[str, str]) -> PaymentEvent:
        event_id, kind_name, data = verified_event(
            self._secret, payload, headers, tolerance_s=self._tolerance_s
        )
        try:
            payment_id = data["payment_id"]
            order_id = data.get("order_id")
            amount = data["amount_minor"]
            currency = data["currency"]
        except KeyError as exc:
            raise WebhookRejected(Code.MALFORMED_WEBHOOK, f"not a sandbox event: {exc}") from None
        if not kind_name.startswith("payment."):
            raise WebhookRejected(Code.UNKNOWN_EVENT, f"unknown event type {kind_name!r}")
        try:
            kind = PaymentEventKind(kind_name.removeprefix("payment."))
        except ValueError:
            raise WebhookRejected(Code.UNKNOWN_EVENT, f"unknown event type {kind_name!r}") from None
        if not (
            isinstance(event_id, str)
            and isinstance(payment_id, str)
            and (order_id is None or isinstance(order_id, str))
            and isinstance(amount, int)
            and amount >= 0
            and isinstance(currency, str)
            and len(currency) == 3
        ):
            raise WebhookRejected(Code.MALFORMED_WEBHOOK, "a field of the event has the wrong type")
        return PaymentEvent(
            "sandbox", event_id, kind, payment_id, order_id, amount, currency.upper()
        )
