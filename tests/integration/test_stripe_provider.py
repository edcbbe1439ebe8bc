"""The Stripe adapter at its boundary, with no Stripe: the real SDK against a local HTTP stub
(stripe_stub.py) that answers recorded Checkout Session JSON, and recorded webhook events
signed here in Stripe's scheme, verified by the SDK.

1. each recorded event parses to the right ``PaymentEvent``; every bad delivery is rejected
   with its code;
2. a checkout sends what Stripe expects, form-encoded, with an idempotency key, and a refusal
   or an outage is ``ProviderUnavailable``;
3. through the API on SQLite and PostgreSQL: coins are credited once per payment intent
   however the events are delivered, refunds and disputes claw them back exactly.
"""

from __future__ import annotations

import asyncio
import copy
import hashlib
import json
import socket
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from economy_client import AppFactory, Person, assert_problem, make_app_factory, register
from stripe_stub import (
    Answer,
    SeenRequest,
    StripeStub,
    no_route,
    raw,
    recorded,
    serial,
)
from stripe_stub import sign as stripe_sign

from giftwave.db.engine import make_engine
from giftwave.db.urls import DatabaseUrl
from giftwave.ledger.verify import verify_ledger
from giftwave.payments.base import (
    CheckoutRequest,
    IgnoredEvent,
    PaymentEvent,
    PaymentEventKind,
    ProviderUnavailable,
    WebhookRejected,
)
from giftwave.payments.stripe_checkout import StripeProvider

SECRET = "whsec_test_5f1c0d9e8b7a6c5d4e3f2a1b0c9d8e7f"
API_KEY = "sk_test_51QxR8sLkM2nB7vC4giftwaveStubKey000000000000000000000000000000000"
TOLERANCE_S = 300
WEBHOOK = "/v1/payments/webhooks/stripe"
RECORDED_ORDER = "ord_Qm7cX2kP9vR4tW8yZ1bN"
RECORDED_PI = "pi_3QxR8sLkM2nB7vC41aZ9yT5e"
RECORDED_DELAYED_PI = "pi_3QxS2aLkM2nB7vC40uJ6hG1k"
_serial = serial


def sign(payload: bytes, *, secret: str = SECRET, timestamp: int | None = None) -> str:
    return stripe_sign(payload, secret=secret, timestamp=timestamp)


# --- the stub Stripe API: POST /v1/checkout/sessions ----------------------------------------


def checkout_route(seen: SeenRequest) -> Answer:
    """The recorded session, for the order in the request."""
    if (seen.method, seen.path) != ("POST", "/v1/checkout/sessions"):
        return no_route()
    form = seen.form
    session = recorded("checkout_session_created")
    order_id = form.get("metadata[order_id]", RECORDED_ORDER)
    session["id"] = f"cs_test_a1{next(_serial):06d}{order_id.removeprefix('ord_')}"
    session["url"] = f"https://checkout.stripe.com/c/pay/{session['id']}#fidkdWxOYHwnPyd1"
    session["client_reference_id"] = order_id
    session["metadata"] = {"order_id": order_id, "user_id": form.get("metadata[user_id]")}
    amount = int(form.get("line_items[0][price_data][unit_amount]", "499"))
    session["amount_total"] = session["amount_subtotal"] = amount
    session["success_url"] = form.get("success_url")
    session["cancel_url"] = form.get("cancel_url")
    return 200, session, {}


@pytest.fixture
def stub() -> Iterator[StripeStub]:
    with StripeStub(checkout_route) as running:
        yield running


@pytest.fixture
async def provider(stub: StripeStub) -> AsyncIterator[StripeProvider]:
    p = StripeProvider(
        api_key=API_KEY, webhook_secret=SECRET, tolerance_s=TOLERANCE_S, api_base=stub.url
    )
    yield p
    await p.close()


# --- 1. webhooks, one by one -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kind", "payment_id", "order_id", "amount_minor"),
    [
        (
            "checkout.session.completed",
            PaymentEventKind.SUCCEEDED,
            RECORDED_PI,
            RECORDED_ORDER,
            499,
        ),
        (
            "checkout.session.async_payment_succeeded",
            PaymentEventKind.SUCCEEDED,
            RECORDED_DELAYED_PI,
            RECORDED_ORDER,
            499,
        ),
        (
            "checkout.session.async_payment_failed",
            PaymentEventKind.FAILED,
            RECORDED_DELAYED_PI,
            RECORDED_ORDER,
            499,
        ),
        ("charge.refunded", PaymentEventKind.REFUNDED, RECORDED_PI, RECORDED_ORDER, 499),
        ("charge.dispute.created", PaymentEventKind.DISPUTED, RECORDED_PI, None, 499),
    ],
)
async def test_recorded_event_parses(
    provider: StripeProvider,
    name: str,
    kind: PaymentEventKind,
    payment_id: str,
    order_id: str | None,
    amount_minor: int,
) -> None:
    body = raw(name)
    event = provider.parse_webhook(body, {"stripe-signature": sign(body)})
    assert event == PaymentEvent(
        provider="stripe",
        event_id=recorded(name)["id"],
        kind=kind,
        payment_id=payment_id,
        order_id=order_id,
        amount_minor=amount_minor,
        currency="USD",
    )


async def test_refund_amount_is_cumulative_and_header_name_any_case(
    provider: StripeProvider,
) -> None:
    event = recorded("charge.refunded")
    event["data"]["object"]["amount_refunded"] = 120  # a partial refund so far
    event["data"]["object"]["refunded"] = False
    body = json.dumps(event).encode()
    parsed = provider.parse_webhook(body, {"Stripe-Signature": sign(body)})
    assert isinstance(parsed, PaymentEvent)
    assert (parsed.kind, parsed.amount_minor) == (PaymentEventKind.REFUNDED, 120)


async def test_a_declined_charge_is_a_failed_top_up_with_its_card_fingerprint(
    provider: StripeProvider,
) -> None:
    """Stripe's Charge carries ``payment_method_details.card.fingerprint`` (the same card on
    any account): the recorded charge, as Stripe sends it when the issuer declines."""
    event = recorded("charge.refunded")
    event["type"] = "charge.failed"
    charge = event["data"]["object"]
    charge.update(status="failed", paid=False, captured=False, amount_refunded=0, refunded=False)
    charge["outcome"].update(type="issuer_declined", network_status="declined_by_network")
    charge["payment_method_details"]["card"]["fingerprint"] = "Xt5EWLLDS7FJjR1c"
    body = json.dumps(event).encode()
    parsed = provider.parse_webhook(body, {"stripe-signature": sign(body)})
    assert parsed == PaymentEvent(
        "stripe",
        event["id"],
        PaymentEventKind.FAILED,
        RECORDED_PI,
        RECORDED_ORDER,
        499,
        "USD",
        "Xt5EWLLDS7FJjR1c",
    )
    # The refund of a charge says its card too; a charge that is not a card's says none.
    event = recorded("charge.refunded")
    event["data"]["object"]["payment_method_details"]["card"]["fingerprint"] = "Xt5EWLLDS7FJjR1c"
    body = json.dumps(event).encode()
    refunded = provider.parse_webhook(body, {"stripe-signature": sign(body)})
    assert isinstance(refunded, PaymentEvent)
    assert refunded.card_fingerprint == "Xt5EWLLDS7FJjR1c"
    event["data"]["object"]["payment_method_details"] = {"type": "link", "link": {}}
    body = json.dumps(event).encode()
    other = provider.parse_webhook(body, {"stripe-signature": sign(body)})
    assert isinstance(other, PaymentEvent)
    assert other.card_fingerprint is None


async def test_expanded_payment_intent_is_read_by_its_id(provider: StripeProvider) -> None:
    event = recorded("checkout.session.completed")
    event["data"]["object"]["payment_intent"] = {"id": RECORDED_PI, "object": "payment_intent"}
    body = json.dumps(event).encode()
    parsed = provider.parse_webhook(body, {"stripe-signature": sign(body)})
    assert isinstance(parsed, PaymentEvent)
    assert parsed.payment_id == RECORDED_PI


async def test_completed_but_unpaid_checkout_is_ignored(provider: StripeProvider) -> None:
    body = raw("checkout.session.completed_unpaid")
    event = provider.parse_webhook(body, {"stripe-signature": sign(body)})
    assert isinstance(event, IgnoredEvent)
    assert event.event_id == recorded("checkout.session.completed_unpaid")["id"]
    assert "unpaid" in event.reason


def _signed_as_recorded(body: bytes) -> dict[str, str]:
    return {"stripe-signature": sign(body)}


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        pytest.param(
            raw("checkout.session.completed"),
            {"stripe-signature": sign(raw("checkout.session.completed"), secret="whsec_other")},
            "bad_signature",
            id="other-secret",
        ),
        pytest.param(
            raw("checkout.session.completed").replace(b'"amount_total": 499', b'"amount_total": 1'),
            {"stripe-signature": sign(raw("checkout.session.completed"))},
            "bad_signature",
            id="tampered-body",
        ),
        pytest.param(
            raw("checkout.session.completed"),
            {"stripe-signature": "t=1767225712,v1=deadbeef"},
            "bad_signature",
            id="wrong-mac",
        ),
        pytest.param(
            raw("checkout.session.completed"),
            {"stripe-signature": "v1=" + "0" * 64},
            "bad_signature",
            id="no-timestamp",
        ),
        pytest.param(
            raw("checkout.session.completed"),
            {
                "stripe-signature": sign(
                    raw("checkout.session.completed"),
                    timestamp=int(time.time()) - TOLERANCE_S - 60,
                )
            },
            "stale_webhook",
            id="old-timestamp",
        ),
        pytest.param(raw("checkout.session.completed"), {}, "missing_signature", id="no-header"),
        pytest.param(
            raw("checkout.session.completed"),
            {"stripe-signature": ""},
            "missing_signature",
            id="empty-header",
        ),
        pytest.param(b"{not json", None, "malformed_webhook", id="not-json"),
        pytest.param(b"[1, 2]", None, "malformed_webhook", id="json-array"),
        pytest.param(b"\xff\xfe{}", None, "malformed_webhook", id="not-utf8"),
        pytest.param(
            b'{"id": "evt_1QxR8tLkM2nB7vC4p0Wq3sHd", "object": "event"}',
            None,
            "malformed_webhook",
            id="no-data",
        ),
        pytest.param(
            raw("checkout.session.completed").replace(
                f'"payment_intent": "{RECORDED_PI}"'.encode(), b'"payment_intent": null'
            ),
            None,
            "malformed_webhook",
            id="no-payment-intent",
        ),
        pytest.param(
            raw("charge.refunded").replace(b'"amount_refunded": 499', b'"amount_refunded": "499"'),
            None,
            "malformed_webhook",
            id="amount-as-string",
        ),
        pytest.param(raw("checkout.session.expired"), None, "unknown_event", id="unknown-type"),
    ],
)
async def test_bad_delivery_is_rejected(
    provider: StripeProvider, body: bytes, headers: dict[str, str] | None, code: str
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        provider.parse_webhook(body, _signed_as_recorded(body) if headers is None else headers)
    assert caught.value.code == code, caught.value.detail


async def test_the_configured_tolerance_is_applied() -> None:
    """The provider's own tolerance is the one applied, not the SDK's default of 300 s."""
    strict = StripeProvider(api_key=API_KEY, webhook_secret=SECRET, tolerance_s=5)
    try:
        body = raw("checkout.session.completed")
        ten_s_ago = sign(body, timestamp=int(time.time()) - 10)
        with pytest.raises(WebhookRejected) as caught:
            strict.parse_webhook(body, {"stripe-signature": ten_s_ago})
        assert caught.value.code == "stale_webhook"
        assert isinstance(
            strict.parse_webhook(body, {"stripe-signature": sign(body)}), PaymentEvent
        )
    finally:
        await strict.close()


# --- 2. checkout creation against the stub ---------------------------------------------------


def _checkout_request(order_id: str = RECORDED_ORDER) -> CheckoutRequest:
    return CheckoutRequest(
        order_id=order_id,
        user_id=42,
        coins=700,
        amount_minor=499,
        currency="USD",
        success_url=f"https://giftwave.example/shop?order={order_id}&result=success",
        cancel_url=f"https://giftwave.example/shop?order={order_id}&result=cancel",
        site_url="https://giftwave.example",
    )


async def test_checkout_sends_what_stripe_expects(
    stub: StripeStub, provider: StripeProvider
) -> None:
    session = await provider.create_checkout(_checkout_request())
    assert len(stub.requests) == 1
    sent = stub.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/checkout/sessions")
    assert sent.headers["content-type"] == "application/x-www-form-urlencoded"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.headers["idempotency-key"] == f"checkout:{RECORDED_ORDER}"
    assert sent.headers["stripe-version"]
    assert sent.form == {
        "mode": "payment",
        "line_items[0][quantity]": "1",
        "line_items[0][price_data][currency]": "usd",
        "line_items[0][price_data][unit_amount]": "499",
        "line_items[0][price_data][product_data][name]": "700 coins",
        "client_reference_id": RECORDED_ORDER,
        "metadata[order_id]": RECORDED_ORDER,
        "metadata[user_id]": "42",
        "payment_intent_data[metadata][order_id]": RECORDED_ORDER,
        "payment_intent_data[metadata][user_id]": "42",
        "success_url": f"https://giftwave.example/shop?order={RECORDED_ORDER}&result=success",
        "cancel_url": f"https://giftwave.example/shop?order={RECORDED_ORDER}&result=cancel",
    }
    assert session.session_id.startswith("cs_test_")
    assert session.url == f"https://checkout.stripe.com/c/pay/{session.session_id}#fidkdWxOYHwnPyd1"


async def test_checkout_answers_the_recorded_session(
    stub: StripeStub, provider: StripeProvider
) -> None:
    answer = recorded("checkout_session_created")
    stub.reply(200, answer)
    session = await provider.create_checkout(_checkout_request())
    assert (session.session_id, session.url) == (answer["id"], answer["url"])


async def test_server_errors_are_retried_with_the_same_key_then_unavailable(
    stub: StripeStub, provider: StripeProvider
) -> None:
    error = {"error": {"type": "api_error", "message": "Something went wrong on Stripe's end."}}
    for _ in range(3):
        stub.reply(500, error)
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.create_checkout(_checkout_request())
    assert caught.value.code == "provider_unavailable"
    assert len(stub.requests) == 3  # the first try and two retries
    assert {r.headers["idempotency-key"] for r in stub.requests} == {f"checkout:{RECORDED_ORDER}"}


async def test_a_retry_that_succeeds_creates_the_checkout(
    stub: StripeStub, provider: StripeProvider
) -> None:
    stub.reply(503, {"error": {"type": "api_error", "message": "overloaded"}})
    session = await provider.create_checkout(_checkout_request())
    assert session.session_id.startswith("cs_test_")
    assert len(stub.requests) == 2


async def test_a_refusal_is_unavailable_and_not_retried(
    stub: StripeStub, provider: StripeProvider
) -> None:
    stub.reply(
        402,
        {
            "error": {
                "type": "invalid_request_error",
                "code": "account_invalid",
                "message": "Your account cannot currently make live charges.",
            }
        },
        Stripe_Should_Retry="false",
    )
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.create_checkout(_checkout_request())
    assert "cannot currently make live charges" in caught.value.detail
    assert len(stub.requests) == 1


async def test_a_session_without_url_is_unavailable(
    stub: StripeStub, provider: StripeProvider
) -> None:
    answer = recorded("checkout_session_created")
    answer["url"] = None
    stub.reply(200, answer)
    with pytest.raises(ProviderUnavailable):
        await provider.create_checkout(_checkout_request())


async def test_nothing_listening_is_unavailable() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    p = StripeProvider(
        api_key=API_KEY,
        webhook_secret=SECRET,
        tolerance_s=TOLERANCE_S,
        api_base=f"http://127.0.0.1:{port}",
    )
    try:
        with pytest.raises(ProviderUnavailable):
            await p.create_checkout(_checkout_request())
    finally:
        await p.close()


# --- 3. end to end through the API, on both databases ----------------------------------------


@pytest.fixture
def stripe_app(db_url: DatabaseUrl, stub: StripeStub) -> AppFactory:
    factory = make_app_factory(db_url)

    def with_stripe(**overrides: Any) -> Any:
        return factory(
            payment_provider="stripe",
            stripe_api_key=API_KEY,
            stripe_webhook_secret=SECRET,
            stripe_api_base=stub.url,
            **overrides,
        )

    return with_stripe


async def start_topup(
    viewer: Person, stub: StripeStub, coins: int = 700
) -> tuple[dict[str, Any], str]:
    """An order through the API; returns it and the payment intent Stripe would give it."""
    packages = (await viewer.client.get("/v1/coin-packages")).json()
    package = next(p for p in packages if p["coins"] == coins)
    before = len(stub.requests)
    r = await viewer.post(
        "/v1/topups", {"package_id": package["id"], "idempotency_key": f"buy-{next(_serial)}"}
    )
    assert r.status_code == 201, r.text
    order: dict[str, Any] = r.json()
    assert len(stub.requests) == before + 1
    sent = stub.requests[-1]
    assert sent.form["metadata[order_id]"] == order["id"]
    assert sent.form["line_items[0][price_data][unit_amount]"] == str(order["amount_minor"])
    assert sent.headers["idempotency-key"] == f"checkout:{order['id']}"
    assert order["provider"] == "stripe"
    assert order["checkout_url"].startswith("https://checkout.stripe.com/c/pay/cs_test_")
    assert order["status"] == "open"
    return order, f"pi_3QxR8sLkM2nB7vC4{next(_serial):08d}"


def event_for(
    name: str, order: dict[str, Any], payment_intent: str, event_id: str | None = None
) -> bytes:
    """A recorded event about ``order``, as Stripe would send it for that order. Its id is
    derived from the event type and the order (Stripe never reuses an event id), so the same
    call twice is the same event delivered twice."""
    event = copy.deepcopy(recorded(name))
    derived = hashlib.sha256(f"{name}:{order['id']}".encode()).hexdigest()[:24]
    event["id"] = event_id or f"evt_1Qx{derived}"
    obj = event["data"]["object"]
    obj["payment_intent"] = payment_intent
    amount = order["amount_minor"]
    if obj["object"] == "checkout.session":
        obj["metadata"]["order_id"] = obj["client_reference_id"] = order["id"]
        obj["amount_total"] = obj["amount_subtotal"] = amount
    elif obj["object"] == "charge":
        obj["metadata"]["order_id"] = order["id"]
        obj["amount"] = obj["amount_captured"] = obj["amount_refunded"] = amount
    else:
        obj["amount"] = amount
    obj["currency"] = order["currency"].lower()
    return json.dumps(event, indent=2).encode()


async def deliver(
    client: httpx.AsyncClient, body: bytes, signature: str | None = None
) -> httpx.Response:
    return await client.post(
        WEBHOOK,
        content=body,
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "Stripe-Signature": sign(body) if signature is None else signature,
            "User-Agent": "Stripe/1.0 (+https://stripe.com/docs/webhooks)",
        },
    )


async def status_of(viewer: Person, order: dict[str, Any]) -> str:
    r = await viewer.get(f"/v1/topups/{order['id']}")
    assert r.status_code == 200, r.text
    return str(r.json()["status"])


def assert_ledger_clean(db_url: DatabaseUrl) -> None:
    engine = make_engine(db_url)
    try:
        with engine.connect() as conn:
            report = verify_ledger(conn)
    finally:
        engine.dispose()
    assert report.ok, report


async def test_paid_checkout_credits_once_and_a_dispute_claws_back(
    stripe_app: AppFactory, stub: StripeStub, db_url: DatabaseUrl
) -> None:
    async with stripe_app() as client:
        viewer = await register(client)
        order, pi = await start_topup(viewer, stub)
        completed = event_for("checkout.session.completed", order, pi)

        # Forged, stale and unsigned deliveries change nothing.
        r = await deliver(client, completed, sign(completed, secret="whsec_attacker"))
        assert_problem(r, 400, "bad_signature")
        old = sign(completed, timestamp=int(time.time()) - 3600)
        assert_problem(await deliver(client, completed, old), 400, "stale_webhook")
        r = await client.post(WEBHOOK, content=completed)
        assert_problem(r, 400, "missing_signature")
        assert await viewer.coins() == 0
        assert await status_of(viewer, order) == "open"

        # The same event three times, then three more at once: credited once.
        for _ in range(3):
            r = await deliver(client, completed)
            assert r.status_code == 200, r.text
            assert r.json() == {"received": True}
        rs = await asyncio.gather(*(deliver(client, completed) for _ in range(3)))
        assert [x.status_code for x in rs] == [200, 200, 200]
        assert await viewer.coins() == 700
        # Another event id about the same payment intent (Stripe re-emitting, or the delayed
        # method's success arriving too): still once.
        again = event_for(
            "checkout.session.async_payment_succeeded", order, pi, "evt_1QxR9aLkM2nB7vC4z7Yq2wEr"
        )
        assert (await deliver(client, again)).status_code == 200
        other_id = event_for(
            "checkout.session.completed", order, pi, "evt_1QxR9bLkM2nB7vC4c4Vb6nMx"
        )
        assert (await deliver(client, other_id)).status_code == 200
        assert await viewer.coins() == 700
        assert await status_of(viewer, order) == "paid"

        # A forged dispute does nothing; the real one takes everything back.
        dispute = event_for("charge.dispute.created", order, pi)
        r = await deliver(client, dispute, sign(dispute, secret="whsec_attacker"))
        assert_problem(r, 400, "bad_signature")
        assert await viewer.coins() == 700
        for _ in range(2):
            assert (await deliver(client, dispute)).status_code == 200
        wallet = await viewer.wallet()
        assert (wallet["coins"], wallet["coins_debt"]) == (0, 0)
        assert await status_of(viewer, order) == "disputed"

        # An event giftwave does not handle: 400, nothing changes.
        expired = event_for("checkout.session.expired", order, pi)
        assert_problem(await deliver(client, expired), 400, "unknown_event")
        assert await status_of(viewer, order) == "disputed"
    assert_ledger_clean(db_url)


async def test_refund_delivered_before_the_payment_nets_to_zero(
    stripe_app: AppFactory, stub: StripeStub, db_url: DatabaseUrl
) -> None:
    async with stripe_app() as client:
        viewer = await register(client)
        order, pi = await start_topup(viewer, stub)
        refunded = event_for("charge.refunded", order, pi)
        assert (await deliver(client, refunded)).status_code == 200
        assert await viewer.coins() == 0
        assert await status_of(viewer, order) == "open"  # nothing paid yet: the refund waits

        completed = event_for("checkout.session.completed", order, pi)
        for _ in range(3):
            assert (await deliver(client, completed)).status_code == 200
        assert (await deliver(client, refunded)).status_code == 200
        wallet = await viewer.wallet()
        assert (wallet["coins"], wallet["coins_debt"]) == (0, 0)
        assert await status_of(viewer, order) == "refunded"

        # A second purchase by the same viewer is untouched by the first one's refund.
        second, pi2 = await start_topup(viewer, stub)
        assert (
            await deliver(client, event_for("checkout.session.completed", second, pi2))
        ).is_success
        assert await viewer.coins() == 700
        assert await status_of(viewer, second) == "paid"
    assert_ledger_clean(db_url)


async def test_delayed_payment_method_is_acknowledged_then_settles(
    stripe_app: AppFactory, stub: StripeStub, db_url: DatabaseUrl
) -> None:
    async with stripe_app() as client:
        viewer = await register(client)
        order, pi = await start_topup(viewer, stub)
        # A bank debit: the checkout completes unpaid. Answered 2xx so Stripe stops retrying.
        unpaid = event_for("checkout.session.completed_unpaid", order, pi)
        for _ in range(2):
            r = await deliver(client, unpaid)
            assert r.status_code == 200, r.text
            assert r.json() == {"received": True, "ignored": True}
        assert await viewer.coins() == 0
        assert await status_of(viewer, order) == "open"
        # Days later, the debit clears.
        paid = event_for("checkout.session.async_payment_succeeded", order, pi)
        assert (await deliver(client, paid)).status_code == 200
        assert await viewer.coins() == 700
        assert await status_of(viewer, order) == "paid"

        # Another order whose debit bounces: failed, no coins.
        bounced, pi2 = await start_topup(viewer, stub)
        assert (
            await deliver(client, event_for("checkout.session.completed_unpaid", bounced, pi2))
        ).is_success
        failed = event_for("checkout.session.async_payment_failed", bounced, pi2)
        assert (await deliver(client, failed)).status_code == 200
        assert await status_of(viewer, bounced) == "failed"
        assert await viewer.coins() == 700
    assert_ledger_clean(db_url)


async def test_stripe_outage_answers_503_and_no_order(
    stripe_app: AppFactory, stub: StripeStub
) -> None:
    async with stripe_app() as client:
        viewer = await register(client)
        packages = (await client.get("/v1/coin-packages")).json()
        for _ in range(3):
            stub.reply(500, {"error": {"type": "api_error", "message": "down"}})
        r = await viewer.post(
            "/v1/topups", {"package_id": packages[0]["id"], "idempotency_key": "outage"}
        )
        assert_problem(r, 503, "provider_unavailable")
        assert (await viewer.get("/v1/topups")).json() == []
