"""Payment webhooks under attack and under redelivery, on SQLite and PostgreSQL: a forged, stale,
unknown, malformed or oversized delivery is a 4xx problem and changes nothing; a genuine one
delivered many times, or concurrently, credits the coins once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
from economy_client import FAST, AppFactory, Person, assert_problem, economy_app, register
from sqlalchemy import func, select

from giftwave.api.state import app_services
from giftwave.db.tables import payment_events, transfers
from giftwave.payments.base import PaymentEventKind
from giftwave.payments.sandbox import SIGNATURE_HEADER, WEBHOOK_PATH, SandboxProvider
from giftwave.payments.signing import signature_header

__all__ = ["economy_app"]

SECRET = FAST["sandbox_webhook_secret"]
assert isinstance(SECRET, str)


def provider(client: httpx.AsyncClient) -> SandboxProvider:
    sandbox = app_services(client.app).economy.topups.provider
    assert isinstance(sandbox, SandboxProvider)
    return sandbox


def stored(client: httpx.AsyncClient) -> tuple[int, int]:
    """(payment events stored, ledger transfers)."""
    db = app_services(client.app).db
    with db.connect() as conn:
        events = conn.execute(select(func.count()).select_from(payment_events)).scalar_one()
        moved = conn.execute(select(func.count()).select_from(transfers)).scalar_one()
    return int(events), int(moved)


async def open_order(viewer: Person, coins: int = 700) -> dict[str, Any]:
    packages = (await viewer.client.get("/v1/coin-packages")).json()
    package = next(p for p in packages if p["coins"] == coins)
    r = await viewer.post("/v1/topups", {"package_id": package["id"], "idempotency_key": "o1"})
    assert r.status_code == 201, r.text
    return dict(r.json())


def paid_event(client: httpx.AsyncClient, order: dict[str, Any]) -> dict[str, Any]:
    session = order["checkout_url"].rsplit("/", 1)[1]
    payload = provider(client).event_payload(
        PaymentEventKind.SUCCEEDED, session, order["id"], order["amount_minor"], order["currency"]
    )
    event: dict[str, Any] = orjson.loads(payload)
    return event


async def deliver(
    client: httpx.AsyncClient,
    payload: bytes | Any,
    *,
    secret: str = SECRET,
    timestamp_s: int | None = None,
    signature: str | None = None,
) -> httpx.Response:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    header = signature or signature_header(secret, body, timestamp_s=timestamp_s)
    return await client.post(
        WEBHOOK_PATH,
        content=body,
        headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"},
    )


async def test_forged_stale_unknown_malformed_or_huge_webhooks_change_nothing(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        order = await open_order(viewer)
        event = paid_event(client, order)
        body = orjson.dumps(event)
        before = stored(client)
        now = int(time.time())

        assert_problem(await deliver(client, body, secret="whsec_guess"), 400, "bad_signature")
        # Signed for another body: the body was tampered with after signing.
        richer = orjson.dumps({**event, "data": {**event["data"], "amount_minor": 1}})
        sig = signature_header(SECRET, body)
        assert_problem(await deliver(client, richer, signature=sig), 400, "bad_signature")
        r = await client.post(WEBHOOK_PATH, content=body)
        assert_problem(r, 400, "missing_signature")
        for garbage in ("v1=abc", "t=soon,v1=abc", "t=,v1=", ",,,"):
            r = await deliver(client, body, signature=garbage)
            assert r.status_code == 400, r.text
            assert r.json()["code"] in {"malformed_signature", "bad_signature"}
        # A genuine delivery recorded long ago (a replay), or from the future.
        old = now - 301
        assert_problem(await deliver(client, body, timestamp_s=old), 400, "stale_webhook")
        assert_problem(await deliver(client, body, timestamp_s=now + 3600), 400, "stale_webhook")

        # Signed, but not an event giftwave knows or can read.
        for kind in ("payment.teleported", "charge.succeeded", "", 5, None, ["payment.succeeded"]):
            r = await deliver(client, {**event, "type": kind})
            assert r.status_code == 400, r.text
            assert r.json()["code"] in {"unknown_event", "malformed_webhook"}, r.json()
        malformed: list[Any] = [
            b"{not json",
            b"",
            b"[]",
            b'"payment.succeeded"',
            {"type": "payment.succeeded"},
            {**event, "data": "pay me"},
            {**event, "data": {**event["data"], "amount_minor": "499"}},
            {**event, "data": {**event["data"], "amount_minor": -499}},
            {**event, "data": {**event["data"], "amount_minor": 10**30}},
            {**event, "data": {**event["data"], "currency": "DOLLARS"}},
            {**event, "data": {**event["data"], "payment_id": 7}},
            {**event, "id": {"nested": True}},
        ]
        for payload in malformed:
            r = await deliver(client, payload)
            assert r.status_code in (400, 422), r.text
            assert r.headers["content-type"].startswith("application/problem+json")
            assert r.json()["code"] == "malformed_webhook", r.json()
        # Ids too long to store are refused before they reach the database.
        for field in ("payment_id", "order_id"):
            r = await deliver(client, {**event, "data": {**event["data"], field: "p" * 300}})
            assert r.status_code in (400, 422), r.text
            assert r.json()["code"] == "malformed_webhook", r.json()
        r = await deliver(client, {**event, "id": "e" * 300})
        assert r.status_code in (400, 422), r.text
        assert r.json()["code"] == "malformed_webhook", r.text

        # Oversized: refused by its length, or while reading a body that did not say it.
        huge = orjson.dumps({**event, "padding": "x" * 70_000})
        assert_problem(await deliver(client, huge), 413, "payload_too_large")

        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(100):
                yield b"x" * 1024

        r = await client.post(WEBHOOK_PATH, content=chunks(), headers={SIGNATURE_HEADER: sig})
        assert_problem(r, 413, "payload_too_large")
        r = await client.post(
            "/v1/payments/webhooks/stripe", content=body, headers={SIGNATURE_HEADER: sig}
        )
        assert_problem(r, 404, "unknown_provider")

        assert stored(client) == before
        assert await viewer.coins() == 0
        assert (await viewer.get(f"/v1/topups/{order['id']}")).json()["status"] == "open"

        # The genuine event still works afterwards.
        r = await deliver(client, body)
        assert r.status_code == 200, r.text
        assert await viewer.coins() == 700


async def test_one_payment_credits_once_however_often_it_is_delivered(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        viewer = await register(client)
        order = await open_order(viewer)
        event = paid_event(client, order)
        for _ in range(5):
            r = await deliver(client, event)
            assert r.status_code == 200, r.text
        assert await viewer.coins() == 700
        # The provider may also send the same payment again as a new event.
        r = await deliver(client, {**event, "id": event["id"] + "-again"})
        assert r.status_code == 200, r.text
        assert await viewer.coins() == 700
        assert (await viewer.get(f"/v1/topups/{order['id']}")).json()["status"] == "paid"

        # Concurrently: a fresh order, its event delivered 20 times at once, and 5 new ids.
        fan = await register(client)
        order2 = await open_order(fan, 350)
        event2 = paid_event(client, order2)
        copies = [event2] * 20 + [{**event2, "id": f"{event2['id']}-{i}"} for i in range(5)]
        responses = await asyncio.gather(*(deliver(client, e) for e in copies))
        assert {r.status_code for r in responses} == {200}, [r.text for r in responses]
        assert await fan.coins() == 350
        assert await viewer.coins() == 700
        assert (await fan.get(f"/v1/topups/{order2['id']}")).json()["status"] == "paid"


async def test_a_payment_of_another_amount_is_held_and_credits_nothing(
    economy_app: AppFactory,
) -> None:
    """The provider reports 1 cent less than the order: the order is held for an operator
    (mismatch), no coin moves, and redeliveries and later events do not change that."""
    async with economy_app() as client:
        viewer = await register(client)
        order = await open_order(viewer)
        event = paid_event(client, order)
        short = {**event, "data": {**event["data"], "amount_minor": order["amount_minor"] - 1}}
        _, moved_before = stored(client)
        for _ in range(2):
            r = await deliver(client, short)
            assert r.status_code == 200, r.text
        refund = {**short, "id": short["id"] + "-refund", "type": "payment.refunded"}
        r = await deliver(client, refund)
        assert r.status_code == 200, r.text
        assert await viewer.coins() == 0
        assert stored(client)[1] == moved_before
        r = await viewer.get(f"/v1/topups/{order['id']}")
        assert r.json()["status"] == "mismatch"
