"""`giftwave reconcile --provider stripe` at Stripe's boundary, with no Stripe: the official SDK
lists balance transactions from a local HTTP stub on 127.0.0.1 answering a recorded listing
(tests/fixtures/stripe/balance_transactions.list.json), as test_stripe_provider.py does for
Checkout.

1. a listing of two pages is read whole (auto-pagination, created[gte], the sources
   expanded) into top-up, refund and dispute records; a payout to the bank and a failed
   refund are none;
2. through the API and the command, on SQLite and PostgreSQL: top-ups and refunds taken by
   webhook are clean; a dispute Stripe lists but never delivered is reported until its webhook
   is delivered; Stripe unreachable, refusing the key or answering an unexpected object is
   exit 2.
"""

from __future__ import annotations

import copy
import json
import socket
import time
from typing import Any

import httpx
from economy_client import AppFactory, Person, register
from serverproc import giftwave_env, run_cli
from test_stripe_provider import (
    API_KEY,
    StripeStub,
    deliver,
    event_for,
    recorded,
    start_topup,
    status_of,
    stripe_app,
    stub,
)

from giftwave.db.urls import DatabaseUrl
from giftwave.payments.records import DONE, Record, RecordKind
from giftwave.payments.stripe_records import StripeRecords

__all__ = ["stripe_app", "stub"]

LISTING = "balance_transactions.list"


def listing_page(items: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    page = copy.deepcopy(recorded(LISTING))
    page["data"], page["has_more"] = items, has_more
    return page


async def test_a_listing_of_two_pages_is_read_whole(stub: StripeStub) -> None:
    items = recorded(LISTING)["data"]
    # A second refund that failed at the bank: it gave nothing back, so it is no refund.
    failed = copy.deepcopy(next(b for b in items if b["type"] == "refund"))
    failed["id"], failed["source"]["id"] = "txn_3QxR8sLkM2nB7vC41fA1lD0x", "re_3QxR8sFailed"
    failed["source"]["status"] = "failed"
    stub.reply(200, listing_page(items[:2], has_more=True))
    stub.reply(200, listing_page([*items[2:], failed], has_more=False))
    source = StripeRecords(api_key=API_KEY, api_base=stub.url)
    try:
        found = await source.records(1_767_000_000_000_000)
    finally:
        await source.close()

    pi = "pi_3QxR8sLkM2nB7vC41aZ9yT5e"
    assert set(found) == {
        # The charge as it is now: refunded, then disputed (a dispute wins).
        Record(RecordKind.TOPUP, pi, 499, "USD", "disputed", 1_767_225_711_000_000),
        Record(RecordKind.REFUND, pi, 499, "USD", DONE, 1_767_312_111_000_000),
        Record(RecordKind.DISPUTE, pi, 499, "USD", DONE, 1_768_435_200_000_000),
    }
    assert len(found) == 3
    first, second = stub.requests
    assert (first.method, first.path) == ("GET", "/v1/balance_transactions")
    assert first.form == {
        "created[gte]": "1767000000",
        "limit": "100",
        "expand[0]": "data.source",
    }
    assert first.headers["authorization"] == f"Bearer {API_KEY}"
    assert second.form["starting_after"] == items[1]["id"]
    assert second.form["created[gte]"] == "1767000000"


# --- 2. through the API and the command --------------------------------------------------------


def charge_bt(order: dict[str, Any], pi: str, *, refunded: bool = False) -> dict[str, Any]:
    bt = copy.deepcopy(next(b for b in recorded(LISTING)["data"] if b["type"] == "charge"))
    charge = bt["source"]
    amount = order["amount_minor"]
    bt["id"] = "txn_ch" + pi.removeprefix("pi_")
    bt["created"] = charge["created"] = int(time.time())
    bt["amount"] = charge["amount"] = charge["amount_captured"] = amount
    charge["id"] = "ch_" + pi.removeprefix("pi_")
    charge["payment_intent"] = pi
    charge["metadata"]["order_id"] = order["id"]
    charge["amount_refunded"] = amount if refunded else 0
    charge["refunded"] = refunded
    charge["disputed"] = False
    return bt


def source_bt(kind: str, order: dict[str, Any], pi: str) -> dict[str, Any]:
    """A refund or dispute balance transaction of the whole order."""
    bt = copy.deepcopy(next(b for b in recorded(LISTING)["data"] if b["type"] == kind))
    source = bt["source"]
    bt["id"] = f"txn_{kind[:3]}" + pi.removeprefix("pi_")
    bt["created"] = source["created"] = int(time.time())
    bt["amount"] = -order["amount_minor"]
    source["amount"] = order["amount_minor"]
    source["payment_intent"] = pi
    source["charge"] = "ch_" + pi.removeprefix("pi_")
    return bt


def reconcile(db_url: DatabaseUrl, api_base: str) -> tuple[int, str, str]:
    env = giftwave_env(db_url)
    env["GIFTWAVE_STRIPE_API_KEY"] = API_KEY
    env["GIFTWAVE_STRIPE_API_BASE"] = api_base
    done = run_cli(["reconcile", "--provider", "stripe", "--json"], env)
    return done.returncode, done.stdout, done.stderr


def found_in(out: str) -> set[tuple[str, str, str]]:
    run = json.loads(out)
    return {(m["mismatch"], m["kind"], m["reference"]) for m in run["mismatches"]}


async def paid(client: httpx.AsyncClient, viewer: Person, stub: StripeStub) -> tuple[Any, str]:
    order, pi = await start_topup(viewer, stub)
    assert (await deliver(client, event_for("checkout.session.completed", order, pi))).is_success
    return order, pi


async def test_webhooks_taken_are_clean_and_an_undelivered_dispute_is_reported(
    stripe_app: AppFactory, stub: StripeStub, db_url: DatabaseUrl
) -> None:
    async with stripe_app() as client:
        viewer = await register(client)
        kept, kept_pi = await paid(client, viewer, stub)
        back, back_pi = await paid(client, viewer, stub)
        assert (await deliver(client, event_for("charge.refunded", back, back_pi))).is_success
        assert await status_of(viewer, back) == "refunded"

        listed = [
            charge_bt(kept, kept_pi),
            charge_bt(back, back_pi, refunded=True),
            source_bt("refund", back, back_pi),
        ]
        stub.reply(200, listing_page(listed, has_more=False))
        code, out, err = reconcile(db_url, stub.url)
        assert code == 0, out + err
        assert json.loads(out)["records"] == {"ledger": 3, "provider": 3}
        sent = stub.requests[-1]
        since_s = int(sent.form["created[gte]"])
        # 30 days back by default, read from 7 days before that.
        assert abs(since_s - (time.time() - 37 * 86_400)) < 120

        # The buyer's bank disputes the kept payment; its webhook never reaches us.
        listed[0]["source"]["disputed"] = True
        listed.append(source_bt("adjustment", kept, kept_pi))
        stub.reply(200, listing_page(listed, has_more=False))
        code, out, err = reconcile(db_url, stub.url)
        assert code == 1, out + err
        assert found_in(out) == {
            ("state_differs", "topup", kept_pi),
            ("missing_in_ledger", "dispute", kept_pi),
        }

        # Delivered at last: the coins are clawed back and the books agree.
        assert (
            await deliver(client, event_for("charge.dispute.created", kept, kept_pi))
        ).is_success
        stub.reply(200, listing_page(listed, has_more=False))
        code, out, err = reconcile(db_url, stub.url)
        assert code == 0, out + err


async def test_stripe_unreachable_refusing_or_odd_is_exit_2(
    stub: StripeStub, db_url: DatabaseUrl
) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    code, out, err = reconcile(db_url, f"http://127.0.0.1:{port}")
    assert (code, out) == (2, ""), err
    assert "Stripe" in err

    stub.reply(401, {"error": {"type": "invalid_request_error", "message": "Invalid API Key"}})
    code, out, err = reconcile(db_url, stub.url)
    assert (code, out) == (2, ""), err
    assert "Invalid API Key" in err
    assert API_KEY not in err

    odd = copy.deepcopy(recorded(LISTING)["data"][-1])
    odd["source"] = odd["source"]["id"]  # not expanded
    stub.reply(200, listing_page([odd], has_more=False))
    code, out, err = reconcile(db_url, stub.url)
    assert (code, out) == (2, ""), err
    assert "unexpected object" in err
