"""Stripe Connect's own bills to the platform, at Stripe's boundary: the official SDK lists the
platform's ``stripe_fee`` balance transactions (recorded payloads, the local Connect stub of
test_stripe_connect.py), the ledger takes each once as a fee expense per currency, the economy
report's fees include them, and `giftwave reconcile --provider stripe` compares them both ways.

1. reading: Connect's bills out of Stripe's fees (Radar's left out), a credit, a bill that
   names a payout, every page, the listing's parameters;
2. on SQLite and PostgreSQL: imported once whatever the repeats (the ledger verifies, the
   report's fees and gross include them); reconcile clean, then a bill only at Stripe and one
   only in the ledger are both reported.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from serverproc import giftwave_env, run_cli
from sqlalchemy import select
from stripe_stub import StripeStub, recorded
from test_economy_payouts import ledger_ok
from test_stripe_connect import API_KEY, SECRET, TRANSFERS_SECRET, FakeConnect, fake, stub

from giftwave.analytics.reports import payout_money
from giftwave.db.engine import make_engine
from giftwave.db.tables import provider_fees, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.provider_fees import ProviderFees, provider_fee_id
from giftwave.economy.wallets import Wallets
from giftwave.ledger.accounts import find_account
from giftwave.ledger.engine import PostingEngine
from giftwave.payments.records import ProviderFee
from giftwave.payments.stripe_records import StripeConnectFees, connect_fee_of

__all__ = ["fake", "stub"]

BILLS = "balance_transactions.stripe_fee.list"
SINCE_S = 1_769_000_000
CONNECT_CENTS = 175 + 200 + 13 + 5  # the recorded month: payouts, an account, volume, abroad


def bills() -> list[dict[str, Any]]:
    return copy.deepcopy(recorded(BILLS)["data"])


def test_connect_bills_are_read_out_of_stripes_fees() -> None:
    found = [connect_fee_of(item) for item in bills()]
    assert [f.fee_type if f else None for f in found] == [
        "Payout Fee",
        "Active Account Billing",
        "Account Volume Billing",
        "Cross-Border Transfers",
        None,  # Radar's bill: not the payouts'
    ]
    payout_fee = found[0]
    assert payout_fee == ProviderFee(
        reference="txn_1QzA7kLkM2nB7vC4pF1eQ9sD",
        amount_minor=175,
        currency="USD",
        fee_type="Payout Fee",
        period="2026-01-01 - 2026-01-31",
        payout_id=None,
        at_us=1_769_904_000_000_000,
    )
    credit = bills()[1] | {"amount": 200, "net": 200}
    assert connect_fee_of(credit) is not None
    assert connect_fee_of(credit).amount_minor == -200  # type: ignore[union-attr]
    # A bill whose source is one of giftwave's transfers is that payout's.
    named = bills()[0] | {"source": recorded("connect_transfer_created")}
    assert connect_fee_of(named).payout_id == "po_gw_7Hk2mQ9xR4"  # type: ignore[union-attr]
    assert connect_fee_of(bills()[0] | {"type": "adjustment"}) is None


def add_bills(fake: FakeConnect, count: int, *, created: int = SINCE_S) -> list[str]:
    """``count`` Payout Fee bills of 25 cents at Stripe, oldest first; their ids."""
    ids = []
    for n in range(count):
        bill = bills()[0] | {"id": f"txn_1QzB{n:020d}", "amount": -25, "net": -25}
        bill["created"] = created + n
        fake.balance_transactions.append(bill)
        ids.append(bill["id"])
    return ids


async def test_every_page_is_read_with_stripes_own_filter(
    stub: StripeStub, fake: FakeConnect
) -> None:
    ids = add_bills(fake, 130)  # two pages
    fake.balance_transactions += bills()  # the recorded month, Radar's bill among them
    source = StripeConnectFees(api_key=API_KEY, api_base=stub.url)
    try:
        found = await source.fees(SINCE_S * 1_000_000)
    finally:
        await source.close()
    assert {f.reference for f in found} == set(ids) | {b["id"] for b in bills()[:4]}
    assert len(found) == 134
    first, second = stub.requests
    assert first.path == second.path == "/v1/balance_transactions"
    assert first.form == {
        "type": "stripe_fee",
        "created[gte]": str(SINCE_S),
        "limit": "100",
        "expand[0]": "data.source",
    }
    assert second.form["starting_after"] != ""


# --- 2. in the ledger, and reconciled, on both databases ---------------------------------------


def fees_balance(db_url: DatabaseUrl) -> tuple[int | None, int | None]:
    engine = make_engine(db_url)
    with engine.connect() as conn:
        expense = find_account(conn, "platform:payout_fees:usd")
        balance = find_account(conn, "platform:payout_provider:stripe:usd")
    engine.dispose()
    return (
        None if expense is None else -expense.balance,
        None if balance is None else balance.balance,
    )


def reconcile(db_url: DatabaseUrl, stub: StripeStub) -> tuple[int, dict[str, Any]]:
    env = giftwave_env(db_url) | {
        "GIFTWAVE_PAYOUT_PROVIDER": "stripe",
        "GIFTWAVE_STRIPE_API_KEY": API_KEY,
        "GIFTWAVE_STRIPE_API_BASE": stub.url,
        "GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET": SECRET,
        "GIFTWAVE_STRIPE_CONNECT_TRANSFERS_WEBHOOK_SECRET": TRANSFERS_SECRET,
    }
    done = run_cli(["reconcile", "--provider", "stripe", "--since", "2026-01-01", "--json"], env)
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
async def importer(db_url: DatabaseUrl, posting: PostingEngine, stub: StripeStub) -> Any:
    db = make_engine(db_url)
    source = StripeConnectFees(api_key=API_KEY, api_base=stub.url)
    yield ProviderFees(db, posting, Wallets(db), source, interval_s=3600, lookback_days=45)
    await source.close()
    db.dispose()


async def test_each_bill_is_in_the_ledger_once_and_in_the_report(
    importer: ProviderFees, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    fake.balance_transactions += bills()
    since_us = SINCE_S * 1_000_000

    first = await importer.run(since_us)
    again = await importer.run(since_us)  # another process, the next round: the same bills

    assert (first.posted, first.known, first.refused) == (4, 0, 0)
    assert (again.posted, again.known, again.refused) == (0, 4, 0)
    assert fees_balance(db_url) == (CONNECT_CENTS, CONNECT_CENTS)
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(provider_fees).order_by(provider_fees.c.billed_at_us)).all()
        posted = conn.execute(
            select(transfers.c.id, transfers.c.amount, transfers.c.code).where(
                transfers.c.id.like("provider_fee:%")
            )
        ).all()
        money = {m.currency: m for m in payout_money(conn)}
    engine.dispose()
    assert [(r.fee_type, r.amount_minor, r.period, r.payout_id) for r in rows] == [
        ("Cross-Border Transfers", 5, "2026-01-01 - 2026-01-31", None),
        ("Account Volume Billing", 13, "2026-01-01 - 2026-01-31", None),
        ("Active Account Billing", 200, "2026-01-01 - 2026-01-31", None),
        ("Payout Fee", 175, "2026-01-01 - 2026-01-31", None),
    ]
    assert sorted(posted) == sorted(
        (provider_fee_id("stripe", b["id"]), -b["amount"], "fee") for b in bills()[:4]
    )
    # The economy report: no payout paid yet, the month's fees are all of gross.
    usd = money["USD"]
    assert (usd.fees_minor, usd.gross_minor, usd.net_minor) == (CONNECT_CENTS, CONNECT_CENTS, 0)
    ledger_ok(db_url)

    # Stripe credits a bill back: the expense goes down by it, once.
    credit = bills()[2] | {"id": "txn_1QzC0credit", "amount": 13, "net": 13}
    fake.balance_transactions.append(credit)
    assert (await importer.run(since_us)).posted == 1
    assert (await importer.run(since_us)).posted == 0
    assert fees_balance(db_url) == (CONNECT_CENTS - 13, CONNECT_CENTS - 13)
    ledger_ok(db_url)


async def test_reconcile_compares_the_bills_both_ways(
    importer: ProviderFees, fake: FakeConnect, stub: StripeStub, db_url: DatabaseUrl
) -> None:
    fake.balance_transactions += bills()
    await importer.run(SINCE_S * 1_000_000)

    code, run = reconcile(db_url, stub)
    assert code == 0, run
    assert run["records"] == {"ledger": 4, "provider": 4}

    # Stripe bills one more the ledger never took in, and forgets one it did.
    late = add_bills(fake, 1, created=1_769_905_000)[0]
    gone = fake.balance_transactions.pop(0)["id"]
    code, run = reconcile(db_url, stub)
    assert code == 1, run
    shown = [(m["mismatch"], m["kind"], m["reference"]) for m in run["mismatches"]]
    assert sorted(shown) == [
        ("missing_at_provider", "provider_fee", gone),
        ("missing_in_ledger", "provider_fee", late),
    ]
    found = {m["reference"]: m for m in run["mismatches"]}
    assert found[late]["provider"]["amount_minor"] == 25
    assert found[gone]["ledger"]["amount_minor"] == -bills()[0]["amount"]

    # Taking it in settles one line; the other is Stripe's to explain.
    await importer.run(SINCE_S * 1_000_000)
    code, run = reconcile(db_url, stub)
    assert [m["reference"] for m in run["mismatches"]] == [gone]
