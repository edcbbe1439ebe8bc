"""The sandbox provider: a checkout page served by giftwave itself, for demos and tests.

It behaves like a real provider where it matters: the page only asks; what moves coins is a
signed webhook delivered over HTTP to ``/v1/payments/webhooks/sandbox``, retried with backoff
until giftwave answers 2xx, and verified like any other. The page can pay, decline, refund
(fully or partly) and dispute a payment — the last two are what a bank would do later.

Like a real provider it keeps its own record of each payment (``sandbox_payments``, in the same
database): what was paid, refunded and disputed, written before giftwave is told, whatever
giftwave then does with it. Reconciliation reads that record back (``payment_records``) and
compares it with the ledger.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
from collections.abc import Mapping
from typing import Final
from urllib.parse import urlencode, urlsplit

import httpx
import orjson
from sqlalchemy import Connection, Engine, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from giftwave.clock import now_us
from giftwave.db.tables import sandbox_payments
from giftwave.errors import Code
from giftwave.payments.base import (
    CheckoutRequest,
    CheckoutSession,
    PaymentEvent,
    PaymentEventKind,
    WebhookRejected,
)
from giftwave.payments.records import DONE, Record, RecordKind, topup_state
from giftwave.payments.sender import SignedSender
from giftwave.payments.signing import SIGNATURE_HEADER, verified_event

__all__ = ["SIGNATURE_HEADER", "WEBHOOK_PATH", "SandboxProvider", "payment_records"]

WEBHOOK_PATH: Final = "/v1/payments/webhooks/sandbox"
DEFAULT_CARD: Final = "4242424242424242"  # the test card the checkout page offers
FINGERPRINT_MAX_CHARS: Final = 64


class SandboxProvider:
    name = "sandbox"

    def __init__(
        self,
        *,
        db: Engine,
        secret: str,
        tolerance_s: int,
        client: httpx.AsyncClient,
        webhook_url: str,
    ) -> None:
        self._db = db
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
        card: str = DEFAULT_CARD,
    ) -> bytes:
        """The webhook of ``kind``; a payment or a decline names the card it was tried with
        (``card``: what the buyer typed, reported as a fingerprint as a real provider does)."""
        data: dict[str, object] = {
            "payment_id": self.payment_id(session_id),
            "order_id": order_id,
            "amount_minor": amount_minor,
            "currency": currency,
        }
        if kind in (PaymentEventKind.SUCCEEDED, PaymentEventKind.FAILED):
            data["card_fingerprint"] = self.card_fingerprint(card)
        event = {
            "id": "evt_sb_" + secrets.token_urlsafe(12),
            "type": f"payment.{kind.value}",
            "data": data,
        }
        return orjson.dumps(event)

    def card_fingerprint(self, card: str) -> str:
        """The same card number gives the same fingerprint, and the number is not in it."""
        mac = hmac.new(self._secret.encode(), b"card:" + card.encode(), hashlib.sha256)
        return "fp_sb_" + mac.hexdigest()[:16]

    async def record(
        self,
        kind: PaymentEventKind,
        session_id: str,
        order_id: str,
        amount_minor: int,
        currency: str,
    ) -> None:
        """What happened at the provider, in its own record, before giftwave is told of it.
        A refund's ``amount_minor`` is the total refunded so far (as its event says)."""
        await asyncio.to_thread(
            self._record, kind, session_id, order_id, amount_minor, currency, now_us()
        )

    def _record(
        self,
        kind: PaymentEventKind,
        session_id: str,
        order_id: str,
        amount_minor: int,
        currency: str,
        at_us: int,
    ) -> None:
        payment_id = self.payment_id(session_id)
        row = sandbox_payments.c
        with self._db.begin() as conn:
            if kind in (PaymentEventKind.SUCCEEDED, PaymentEventKind.FAILED):
                try:
                    with conn.begin_nested():
                        conn.execute(
                            insert(sandbox_payments).values(
                                payment_id=payment_id,
                                session_id=session_id,
                                order_id=order_id,
                                amount_minor=amount_minor,
                                currency=currency,
                                status=kind.value,
                                created_at_us=at_us,
                            )
                        )
                except IntegrityError:
                    pass  # decided before: a checkout is paid or declined once
            elif kind is PaymentEventKind.REFUNDED:
                conn.execute(
                    update(sandbox_payments)
                    .where(row.payment_id == payment_id, row.refunded_minor < amount_minor)
                    .values(refunded_minor=amount_minor, refunded_at_us=at_us)
                )
            else:
                conn.execute(
                    update(sandbox_payments)
                    .where(row.payment_id == payment_id, row.disputed.is_(False))
                    .values(disputed=True, disputed_at_us=at_us)
                )

    def refunded_so_far(self, session_id: str) -> int:
        """The total the sandbox has refunded on the session's payment (0: none)."""
        with self._db.connect() as conn:
            refunded = conn.execute(
                select(sandbox_payments.c.refunded_minor).where(
                    sandbox_payments.c.session_id == session_id
                )
            ).scalar()
        return int(refunded or 0)

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
            card = data.get("card_fingerprint")
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
            and (card is None or (isinstance(card, str) and 0 < len(card) <= FINGERPRINT_MAX_CHARS))
        ):
            raise WebhookRejected(Code.MALFORMED_WEBHOOK, "a field of the event has the wrong type")
        return PaymentEvent(
            "sandbox", event_id, kind, payment_id, order_id, amount, currency.upper(), card
        )


def payment_records(conn: Connection, since_us: int) -> list[Record]:
    """The sandbox's payments as records (payments/records.py): each paid one, its refunds
    (summed) and its dispute, with anything from ``since_us`` on. A declined payment moved no
    money and is none."""
    row = sandbox_payments.c
    rows = conn.execute(
        select(sandbox_payments)
        .where(
            row.status == PaymentEventKind.SUCCEEDED.value,
            or_(
                row.created_at_us >= since_us,
                func.coalesce(row.refunded_at_us, 0) >= since_us,
                func.coalesce(row.disputed_at_us, 0) >= since_us,
            ),
        )
        .order_by(row.created_at_us)
    ).all()
    records: list[Record] = []
    for r in rows:
        amount, refunded, currency = int(r.amount_minor), int(r.refunded_minor), str(r.currency)
        state = topup_state(amount, refunded, bool(r.disputed))
        records.append(
            Record(RecordKind.TOPUP, r.payment_id, amount, currency, state, int(r.created_at_us))
        )
        if refunded > 0:
            at_us = int(r.refunded_at_us or r.created_at_us)
            records.append(Record(RecordKind.REFUND, r.payment_id, refunded, currency, DONE, at_us))
        if r.disputed:
            # What the bank takes back: what was not refunded already.
            at_us = int(r.disputed_at_us or r.created_at_us)
            disputed = max(0, amount - refunded)
            records.append(
                Record(RecordKind.DISPUTE, r.payment_id, disputed, currency, DONE, at_us)
            )
    return records
