"""`giftwave reconcile --provider stripe` with payouts through Stripe Connect, at Stripe's
boundary: the official SDK lists the platform's transfers and each connected account's bank
payouts from the local Connect stub of test_stripe_connect.py (its in-memory Stripe).

1. the listing: every page of transfers, each account's payouts read once (none for an account
   whose transfers were all reversed, none for a transfer giftwave did not make), the states;
   more accounts than the bound is refused before any is read;
2. through the API and the command, on SQLite and PostgreSQL: paid, processing and returned
   payouts are clean; each kind of mismatch injected at Stripe is reported, ``--json`` pinned.
"""

from __future__ import annotations

import copy
import json
import time
from typing import Any

import httpx
import pytest
from economy_client import AppFactory
from serverproc import giftwave_env, run_cli
from stripe_stub import StripeStub, recorded, serial
from test_stripe_connect import (
    API_KEY,
    SECRET,
    TRANSFERS_SECRET,
    FakeConnect,
    approved_payout,
    connect_app,
    deliver,
    event,
    fake,
    stub,
)

from giftwave.db.urls import DatabaseUrl
from giftwave.payments import stripe_records
from giftwave.payments.base import ProviderUnavailable
from giftwave.payments.records import Record, RecordKind
from giftwave.payments.stripe_records import CONNECT_LISTERS, StripeRecords

__all__ = ["connect_app", "fake", "stub"]

SINCE_S = 1_767_000_000


def made(
    fake: FakeConnect,
    account: str,
    payout_id: str | None,
    *,
    amount: int = 250,
    reversed_cents: int = 0,
    bank: str | None = None,
    created: int = SINCE_S,
) -> dict[str, Any]:
    """A transfer Stripe holds (and its bank payout on the account, when ``bank`` names its
    status), as giftwave's Connect provider makes them."""
    transfer = copy.deepcopy(recorded("connect_transfer_created"))
    transfer["id"] = f"tr_1QyC{next(serial):020d}"
    transfer |= {"amount": amount, "destination": account, "created": created + next(serial) % 100}
    transfer |= {"amount_reversed": reversed_cents, "reversed": reversed_cents == amount}
    transfer["transfer_group"] = payout_id
    transfer["metadata"] = {} if payout_id is None else {"payout_id": payout_id}
    fake.transfers[transfer["id"]] = transfer
    if bank is not None:
        payout = copy.deepcopy(recorded("connect_payout_created"))
        payout["id"] = f"po_1QyC{next(serial):020d}"
        payout |= {"account": account, "status": bank, "created": transfer["created"] + 1}
        payout["metadata"] = {"payout_id": payout_id, "transfer_id": transfer["id"]}
        fake.payouts[payout["id"]] = payout
    return transfer


async def test_every_page_of_transfers_and_each_accounts_payouts_once(
    stub: StripeStub, fake: FakeConnect
) -> None:
    paid_ids = [f"po_gw_p{n:03d}" for n in range(120)]  # two pages of transfers, of payouts
    for payout_id in paid_ids:
        made(fake, "acct_A", payout_id, bank="paid")
    made(fake, "acct_A", "po_gw_transit", bank="in_transit")
    made(fake, "acct_A", "po_gw_unbanked")  # transferred, the bank payout not made yet
    made(fake, "acct_A", "po_gw_bank_failed", bank="failed")
    taken_back = made(fake, "acct_B", "po_gw_back", reversed_cents=250, bank="paid")
    made(fake, "acct_B", "po_gw_part", reversed_cents=100)
    made(fake, "acct_C", None)  # the platform's other business
    source = StripeRecords(api_key=API_KEY, api_base=stub.url, listers=CONNECT_LISTERS)
    try:
        found = await source.records(SINCE_S * 1_000_000)
    finally:
        await source.close()

    states = {r.reference: r.state for r in found}
    assert states == {
        **dict.fromkeys(paid_ids, "paid"),
        "po_gw_transit": "processing",
        "po_gw_unbanked": "processing",
        "po_gw_bank_failed": "returned",
        "po_gw_back": "returned",
        "po_gw_part": "partly_reversed",
    }
    assert all((r.kind, r.amount_minor, r.currency) == ("payout", 250, "USD") for r in found)
    at_us = taken_back["created"] * 1_000_000
    assert Record(RecordKind.PAYOUT, "po_gw_back", 250, "USD", "returned", at_us) in found
    listings = [(r.path, r.headers.get("stripe-account")) for r in stub.requests]
    assert listings == [
        ("/v1/balance_transactions", None),
        ("/v1/transfers", None),
        ("/v1/transfers", None),
        ("/v1/payouts", "acct_A"),
        ("/v1/payouts", "acct_A"),
        ("/v1/balance_transactions", None),  # Connect's bills (test_connect_fees.py)
    ]
    transfers_page, next_page = stub.requests[1:3]
    assert transfers_page.form == {"created[gte]": str(SINCE_S), "limit": "100"}
    assert next_page.form["starting_after"] != ""
    assert stub.requests[3].form == {"created[gte]": str(SINCE_S), "limit": "100"}


async def test_more_accounts_than_the_bound_is_refused_not_read(
    stub: StripeStub, fake: FakeConnect, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stripe_records, "MAX_ACCOUNTS", 2)
    for n in range(3):
        made(fake, f"acct_{n}", f"po_gw_{n}", bank="paid")
    source = StripeRecords(api_key=API_KEY, api_base=stub.url, listers=CONNECT_LISTERS)
    try:
        with pytest.raises(ProviderUnavailable, match="3 accounts, more than 2"):
            await source.records(SINCE_S * 1_000_000)
    finally:
        await source.close()
    assert not any(r.path == "/v1/payouts" for r in stub.requests)


# --- 2. through the API and the command --------------------------------------------------------


def reconcile(db_url: DatabaseUrl, stub: StripeStub) -> tuple[int, dict[str, Any], str]:
    env = giftwave_env(db_url)
    env |= {
        "GIFTWAVE_PAYOUT_PROVIDER": "stripe",
        "GIFTWAVE_STRIPE_API_KEY": API_KEY,
        "GIFTWAVE_STRIPE_API_BASE": stub.url,
        "GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET": SECRET,
        "GIFTWAVE_STRIPE_CONNECT_TRANSFERS_WEBHOOK_SECRET": TRANSFERS_SECRET,
    }
    done = run_cli(["reconcile", "--provider", "stripe", "--json"], env)
    run = json.loads(done.stdout) if done.stdout else {}
    return done.returncode, run, done.stderr


def transfer_of(fake: FakeConnect, payout_id: str) -> dict[str, Any]:
    return next(t for t in fake.transfers.values() if t["transfer_group"] == payout_id)


def bank_payout_of(fake: FakeConnect, payout_id: str) -> dict[str, Any]:
    return next(p for p in fake.payouts.values() if p["metadata"]["payout_id"] == payout_id)


async def ended(client: httpx.AsyncClient, fake: FakeConnect, bank: str | None) -> str:
    """An approved payout, its bank payout then ``bank`` (paid, failed) as Stripe tells it."""
    creator, account_id, payout_id = await approved_payout(client, fake)
    if bank is not None:
        payout = bank_payout_of(fake, payout_id)
        payout["status"] = bank
        body = event(f"payout.{bank}", payout, account=account_id)
        assert (await deliver(client, body)).status_code == 200
    r = await creator.get(f"/v1/payouts/{payout_id}")
    expected = {None: "processing", "paid": "paid", "failed": "returned"}[bank]
    assert r.json()["status"] == expected, r.text
    return payout_id


def ledger_side(state: str, amount: int = 250) -> dict[str, Any]:
    return {"amount_minor": amount, "currency": "USD", "state": state}


def without_times(side: dict[str, Any] | None) -> dict[str, Any] | None:
    if side is None:
        return None
    assert isinstance(side["at_us"], int)
    return {k: v for k, v in side.items() if k != "at_us"}


async def test_paid_processing_and_returned_are_clean_and_each_mismatch_is_reported(
    connect_app: AppFactory, stub: StripeStub, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app() as client:
        paid = await ended(client, fake, "paid")
        paid_too = await ended(client, fake, "paid")
        processing = await ended(client, fake, None)
        returned = await ended(client, fake, "failed")
    assert transfer_of(fake, returned)["reversed"] is True

    code, run, err = reconcile(db_url, stub)
    assert code == 0, (run, err)
    assert (run["clean"], run["records"]) == (True, {"ledger": 4, "provider": 4})
    assert sum(r.path == "/v1/payouts" and r.method == "GET" for r in stub.requests) == 3

    # Stripe's books drift from the ledger's, one way each.
    account = transfer_of(fake, paid)["destination"]
    made(fake, account, "po_gw_not_ours", bank="paid", created=int(time.time()) - 100)
    del fake.transfers[transfer_of(fake, processing)["id"]]
    transfer_of(fake, paid)["amount"] = 251
    unreversed = transfer_of(fake, returned)
    unreversed |= {"reversed": False, "amount_reversed": 0}
    bank_payout_of(fake, returned)["status"] = "paid"
    transfer_of(fake, paid_too)["amount_reversed"] = 100

    code, run, err = reconcile(db_url, stub)
    assert code == 1, (run, err)
    shown = [
        (m["mismatch"], m["reference"], without_times(m["ledger"]), without_times(m["provider"]))
        for m in run["mismatches"]
    ]
    expected = [
        ("missing_at_provider", processing, ledger_side("processing"), None),
        ("amount_differs", paid, ledger_side("paid"), ledger_side("paid", 251)),
        ("state_differs", paid_too, ledger_side("paid"), ledger_side("partly_reversed")),
        ("state_differs", returned, ledger_side("returned"), ledger_side("paid")),
        ("missing_in_ledger", "po_gw_not_ours", None, ledger_side("paid")),
    ]
    assert sorted(shown, key=lambda m: m[1]) == sorted(expected, key=lambda m: m[1])
    assert all(m["kind"] == "payout" for m in run["mismatches"])
    assert [m["reference"] for m in run["mismatches"]] == sorted(m[1] for m in expected)
    assert run["counts"] == {
        "missing_at_provider": 1,
        "missing_in_ledger": 1,
        "currency_differs": 0,
        "amount_differs": 1,
        "state_differs": 2,
    }
    assert (run["mismatch_count"], run["truncated"], run["records"]) == (
        5,
        False,
        {"ledger": 4, "provider": 4},
    )
