"""Payouts through Stripe Connect at its boundary, with no Stripe: the real SDK against a local
stub of Stripe's accounts, account links, transfers, reversals and payouts (stripe_stub.py),
which keeps Stripe's idempotency (the same key answers what it made the first time), and
recorded events signed here in Stripe's scheme, verified by the SDK.

1. each recorded event parses to the right value; every bad delivery is rejected with its code;
2. accounts, links and transfers send what Stripe expects; a refusal, an outage and a late
   answer are told apart;
3. through the API on SQLite and PostgreSQL: a creator onboards, is paid; a failed bank payout
   takes the money back and returns the diamonds once, whatever the webhooks do; a lost answer
   is asked for again and never pays twice; an account disabled after approval gets the payout
   returned. ``ledger verify`` is clean after each.
"""

from __future__ import annotations

import asyncio
import copy
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from economy_client import AppFactory, Person, assert_problem, make_admin, make_app_factory
from economy_client import register as register_person
from sqlalchemy import select
from stripe_stub import Answer, SeenRequest, StripeStub, no_route, raw, recorded, serial, sign
from test_economy_payouts import ledger_ok

from giftwave.api.state import app_services
from giftwave.config import Settings
from giftwave.config_check import MASK, effective_settings, unsafe_combinations
from giftwave.db.tables import payees
from giftwave.db.urls import DatabaseUrl
from giftwave.payments.base import IgnoredEvent, ProviderUnavailable, WebhookRejected
from giftwave.payments.payout_base import (
    PayeeAccount,
    PayeeAccountUpdated,
    ProviderTimeout,
    TransferEvent,
    TransferEventKind,
    TransferRequest,
)
from giftwave.payments.stripe_connect import StripeConnectProvider

SECRET = "whsec_test_connect_8e2b4d6f1a3c5e7092b4d6f8a0c2e4f6"
TRANSFERS_SECRET = "whsec_test_platform_3d5f7b9a1c2e4f6a8b0c2d4e6f8a1b3c"
CHECKOUT_SECRET = "whsec_test_checkout_7a9c1e3f5b7d9f1a3c5e7b9d1f3a5c7e"
API_KEY = "sk_test_51QyB7cLkM2nB7vC4giftwaveConnectStub000000000000000000000000000"
TOLERANCE_S = 300
WEBHOOK = "/v1/payouts/webhooks/stripe"
RECORDED_ACCOUNT = "acct_1QyB7cLkM2nB7vC4"
RECORDED_TRANSFER = "tr_1QyC2eLkM2nB7vC4bN8wT3hJ"
RECORDED_PAYOUT_ID = "po_gw_7Hk2mQ9xR4"
LINK_PREFIX = "https://connect.stripe.com/setup/e/"
SITE = "http://giftwave.test"
# Short, so a late answer is a timeout in well under a second (the SDK tries three times).
TIMEOUT_S = 0.3
LATE_S = 0.8
TRANSFER_POST = ("POST", "/v1/transfers")
# The sweeper looks every 50 ms for payouts without an answer for longer than three late tries
# take (3 x 0.3 s and the SDK's backoff, ~2.5 s; 3 s was not enough once on a loaded CI
# machine), so it asks again only after the first send gave up.
SWEEP = {"payout_sweep_interval_s": 0.05, "payout_transfer_retry_after_s": 5}
MAX_TRANSFER = 99_999_999  # Stripe's largest amount, in cents
# What Stripe converts a transfer at when it lands in an account of another currency (a
# cross-border account): the stub's fixed rates, sent → received.
STUB_RATES = {("usd", "eur"): 0.9173, ("usd", "gbp"): 0.7861}


def _error(status: int, code: str, message: str, kind: str = "invalid_request_error") -> Answer:
    return status, {"error": {"type": kind, "code": code, "message": message}}, {}


class FakeConnect:
    """The part of Stripe a Connect platform talks to, kept in memory: what each request
    makes, and Stripe's idempotency (the same key and parameters answer the first answer; the
    same key with other parameters is refused)."""

    def __init__(self) -> None:
        self.accounts: dict[str, dict[str, Any]] = {}
        self.transfers: dict[str, dict[str, Any]] = {}
        self.payouts: dict[str, dict[str, Any]] = {}
        self.reversals: dict[str, dict[str, Any]] = {}
        # Each transfer's payment on its account, with its balance transaction (converted into
        # the account's currency when it differs), by (account, payment id).
        self.payments: dict[tuple[str, str], dict[str, Any]] = {}
        # The platform's balance transactions, oldest first (Connect's bills: stripe_fee).
        self.balance_transactions: list[dict[str, Any]] = []
        self.pages_read = 0
        self._keys: dict[tuple[str, str], tuple[str, dict[str, str], Answer]] = {}
        self._lock = threading.Lock()

    def route(self, seen: SeenRequest) -> Answer:
        key = seen.headers.get("idempotency-key")
        scope = seen.headers.get("stripe-account", "")
        with self._lock:
            if seen.method == "POST" and key is not None and (scope, key) in self._keys:
                path, form, answer = self._keys[(scope, key)]
                if (path, form) != (seen.path, seen.form):
                    return _error(
                        400,
                        "",
                        "Keys for idempotent requests can only be used with "
                        "the same parameters they were first used with.",
                        "idempotency_error",
                    )
                return answer
            answer = self._dispatch(seen, scope)
            if seen.method == "POST" and key is not None and answer[0] < 500:
                self._keys[(scope, key)] = (seen.path, seen.form, answer)
            return answer

    def forget_keys(self) -> None:
        """Stripe forgets an idempotency key after 24 hours."""
        self._keys.clear()

    def _dispatch(self, seen: SeenRequest, scope: str) -> Answer:
        parts = seen.path.strip("/").split("/")
        form = seen.form
        match (seen.method, parts):
            case ("POST", ["v1", "accounts"]):
                account = recorded("connect_account_created")
                account["id"] = f"acct_1QyB{next(serial):012d}"
                account["country"] = form["country"]
                account["default_currency"] = form["default_currency"]
                account["metadata"] = {"creator_id": form["metadata[creator_id]"]}
                self.accounts[account["id"]] = account
                return 200, account, {}
            case ("GET", ["v1", "accounts", account_id]):
                if account_id not in self.accounts:
                    return _error(404, "resource_missing", f"No such account: '{account_id}'")
                return 200, self.accounts[account_id], {}
            case ("POST", ["v1", "account_links"]):
                if form.get("account") not in self.accounts:
                    return _error(400, "resource_missing", "No such account")
                link = recorded("connect_account_link_created")
                link["url"] = f"{LINK_PREFIX}{form['account']}/L{next(serial):08d}"
                return 200, link, {}
            case ("GET", ["v1", "transfers"]) if "transfer_group" in form:
                group = form["transfer_group"]
                found = [t for t in self.transfers.values() if t["transfer_group"] == group]
                body = {
                    "object": "list",
                    "data": found[:1],
                    "has_more": False,
                    "url": "/v1/transfers",
                }
                return 200, body, {}
            case ("GET", ["v1", "transfers"]):
                return self._page(list(self.transfers.values()), form, "/v1/transfers")
            case ("GET", ["v1", "balance_transactions"]):
                wanted = form.get("type")
                found = [t for t in self.balance_transactions if wanted in (None, t["type"])]
                return self._page(found, form, "/v1/balance_transactions")  # no top-ups here
            case ("POST", ["v1", "transfers"]):
                return self._transfer(form)
            case ("GET", ["v1", "transfers", transfer_id]):
                return 200, self.transfers[transfer_id], {}
            case ("POST", ["v1", "transfers", transfer_id, "reversals"]):
                return self._reverse(transfer_id, form)
            case ("POST", ["v1", "payouts"]):
                return self._payout(scope, form)
            case ("GET", ["v1", "charges", payment_id]) if (scope, payment_id) in self.payments:
                return 200, self.payments[(scope, payment_id)], {}
            case ("GET", ["v1", "payouts"]):
                return self._payouts_list(scope, form)
        return no_route()

    def _transfer(self, form: dict[str, str]) -> Answer:
        account = self.accounts.get(form["destination"])
        if account is None or account["capabilities"]["transfers"] != "active":
            return _error(
                400,
                "insufficient_capabilities_for_transfer",
                "Your destination account needs to have at least one of the following "
                "capabilities enabled: transfers, crypto_transfers, legacy_payments",
            )
        if int(form["amount"]) > MAX_TRANSFER:
            return _error(400, "amount_too_large", "Amount must be no more than $999,999.99")
        transfer = recorded("connect_transfer_created")
        transfer["id"] = f"tr_1QyC{next(serial):020d}"
        transfer["amount"] = int(form["amount"])
        transfer["currency"] = form["currency"]
        transfer["destination"] = form["destination"]
        transfer["transfer_group"] = form["transfer_group"]
        transfer["created"] = int(time.time())
        transfer["metadata"] = {"payout_id": form["metadata[payout_id]"]}
        transfer["reversals"]["url"] = f"/v1/transfers/{transfer['id']}/reversals"
        transfer["destination_payment"] = self._landed(account, transfer)
        self.transfers[transfer["id"]] = transfer
        return 200, transfer, {}

    def _landed(self, account: dict[str, Any], transfer: dict[str, Any]) -> str:
        """The transfer's payment on the account, in the account's currency: Stripe converts
        a transfer into a cross-border account's currency as it lands."""
        sent, own = transfer["currency"], account["default_currency"]
        rate = 1.0 if sent == own else STUB_RATES[(sent, own)]
        received = int(transfer["amount"] * rate)  # whole minor units (both have two digits)
        payment_id = f"py_1QyE{next(serial):020d}"
        self.payments[(account["id"], payment_id)] = {
            "id": payment_id,
            "object": "charge",
            "amount": received,
            "currency": own,
            "source_transfer": transfer["id"],
            "balance_transaction": {
                "id": f"txn_1QyE{next(serial):020d}",
                "object": "balance_transaction",
                "amount": received,
                "net": received,
                "fee": 0,
                "currency": own,
                "exchange_rate": None if sent == own else rate,
                "type": "payment",
            },
        }
        return payment_id

    def _reverse(self, transfer_id: str, form: dict[str, str]) -> Answer:
        transfer = self.transfers.get(transfer_id)
        if transfer is None:
            return _error(404, "resource_missing", f"No such transfer: '{transfer_id}'")
        if transfer["reversed"]:
            return _error(400, "", f"Transfer {transfer_id} has already been fully reversed.")
        reversal = recorded("connect_transfer_reversal_created")
        reversal["id"] = f"trr_1QyD{next(serial):020d}"
        reversal["transfer"] = transfer_id
        reversal["amount"] = transfer["amount"]
        reversal["metadata"] = {"payout_id": form["metadata[payout_id]"]}
        transfer["reversed"], transfer["amount_reversed"] = True, transfer["amount"]
        transfer["reversals"]["data"].append(reversal)
        self.reversals[reversal["id"]] = reversal
        return 200, reversal, {}

    def _payouts_list(self, scope: str, form: dict[str, str]) -> Answer:
        mine = [p for p in self.payouts.values() if p["account"] == scope]
        return self._page(mine, form, "/v1/payouts")

    def _page(self, items: list[dict[str, Any]], form: dict[str, str], url: str) -> Answer:
        """Newest first, created from ``created[gte]`` on, a page of ``limit`` after
        ``starting_after``, as Stripe lists."""
        since = int(form.get("created[gte]", "0"))
        found = [p for p in reversed(items) if p["created"] >= since]
        after = form.get("starting_after")
        if after is not None:
            found = found[[p["id"] for p in found].index(after) + 1 :]
        limit = int(form.get("limit", "10"))
        self.pages_read += 1
        page = {"object": "list", "data": found[:limit], "has_more": len(found) > limit}
        return 200, page | {"url": url}, {}

    def _payout(self, scope: str, form: dict[str, str]) -> Answer:
        account = self.accounts.get(scope)
        if account is None or not account["payouts_enabled"]:
            return _error(400, "payouts_not_allowed", "Payouts have been disabled on this account.")
        if form["currency"] != account["default_currency"]:  # its balance is in its own
            return _error(400, "balance_insufficient", "You have insufficient funds.")
        payout = recorded("connect_payout_created")
        payout["id"] = f"po_1QyC{next(serial):020d}"
        payout["created"] = int(time.time())
        payout["account"] = scope  # the stub's own note: whose balance paid it
        payout["amount"] = int(form["amount"])
        payout["currency"] = form["currency"]
        payout["metadata"] = {
            "payout_id": form["metadata[payout_id]"],
            "transfer_id": form["metadata[transfer_id]"],
        }
        self.payouts[payout["id"]] = payout
        return 200, payout, {}

    # --- what Stripe's side does, commanded by a test --------------------------------------

    def verify(self, account_id: str) -> None:
        """The creator finished onboarding and Stripe verified them."""
        verified = recorded("account.updated")["data"]["object"]
        verified["id"] = account_id
        made = self.accounts[account_id]
        verified["metadata"] = made["metadata"]
        verified["country"] = made["country"]
        verified["default_currency"] = made["default_currency"]
        self.accounts[account_id] = verified

    def disable(self, account_id: str, reason: str = "rejected.fraud") -> None:
        account = self.accounts[account_id]
        account["payouts_enabled"] = account["charges_enabled"] = False
        account["capabilities"]["transfers"] = "inactive"
        account["requirements"]["disabled_reason"] = reason


def event(
    kind: str,
    obj: dict[str, Any],
    *,
    account: str | None = None,
    created: int | None = None,
    event_id: str | None = None,
) -> bytes:
    """An event as Stripe sends it, shaped like the recorded one of its type."""
    body = copy.deepcopy(recorded(kind))
    body["id"] = event_id or f"evt_1QyZ{next(serial):020d}"
    body["data"]["object"] = copy.deepcopy(obj)
    body["created"] = int(time.time()) if created is None else created
    if account is None:
        body.pop("account", None)
    else:
        body["account"] = account
    return json.dumps(body, indent=2).encode()


def signed(body: bytes, secret: str = SECRET, timestamp: int | None = None) -> dict[str, str]:
    return {"stripe-signature": sign(body, secret=secret, timestamp=timestamp)}


@pytest.fixture
def fake() -> FakeConnect:
    return FakeConnect()


@pytest.fixture
def stub(fake: FakeConnect) -> Iterator[StripeStub]:
    with StripeStub(fake.route) as running:
        yield running


@pytest.fixture
async def provider(stub: StripeStub) -> AsyncIterator[StripeConnectProvider]:
    p = StripeConnectProvider(
        api_key=API_KEY,
        webhook_secrets=(SECRET, TRANSFERS_SECRET),
        tolerance_s=TOLERANCE_S,
        api_base=stub.url,
        request_timeout_s=TIMEOUT_S,
    )
    yield p
    await p.close()


# --- 1. webhooks, one by one -----------------------------------------------------------------


async def test_account_updated_is_the_whole_account_ordered_by_the_event(
    provider: StripeConnectProvider,
) -> None:
    body = raw("account.updated")
    parsed = provider.parse_webhook(body, signed(body))
    assert parsed == PayeeAccountUpdated(
        "stripe",
        "evt_1QyB9eLkM2nB7vC4sT5kW8dA",
        PayeeAccount(RECORDED_ACCOUNT, True, True, (), None, version=1767830950),
    )


@pytest.mark.parametrize(
    ("name", "kind", "amount_minor", "reason"),
    [
        ("payout.paid", TransferEventKind.PAID, 250, None),
        ("payout.failed", TransferEventKind.FAILED, 250, "account_closed"),
        ("transfer.reversed", TransferEventKind.REVERSED, 250, "transfer_reversed"),
    ],
)
async def test_recorded_transfer_events_parse(
    provider: StripeConnectProvider,
    name: str,
    kind: TransferEventKind,
    amount_minor: int,
    reason: str | None,
) -> None:
    body = raw(name)
    parsed = provider.parse_webhook(body, signed(body, TRANSFERS_SECRET))
    assert parsed == TransferEvent(
        "stripe",
        recorded(name)["id"],
        kind,
        RECORDED_TRANSFER,
        RECORDED_PAYOUT_ID,
        amount_minor,
        "USD",
        reason,
    )


def _variant(name: str, change: Any) -> bytes:
    body = recorded(name)
    change(body)
    return json.dumps(body).encode()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        pytest.param(raw("transfer.created"), "not a payout event", id="transfer-created"),
        pytest.param(
            _variant("payout.paid", lambda b: b.pop("account")),
            "platform's own balance",
            id="platform-payout",
        ),
        pytest.param(
            _variant("payout.failed", lambda b: b["data"]["object"].update(metadata={})),
            "did not make",
            id="payout-not-ours",
        ),
        pytest.param(
            _variant(
                "transfer.reversed",
                lambda b: b["data"]["object"].update(reversed=False, amount_reversed=100),
            ),
            "partial reversal",
            id="partial-reversal",
        ),
        pytest.param(
            _variant("transfer.reversed", lambda b: b["data"]["object"].update(metadata={})),
            "did not make",
            id="transfer-not-ours",
        ),
    ],
)
async def test_events_giftwave_does_not_act_on_are_acknowledged(
    provider: StripeConnectProvider, body: bytes, why: str
) -> None:
    parsed = provider.parse_webhook(body, signed(body))
    assert isinstance(parsed, IgnoredEvent)
    assert why in parsed.reason


@pytest.mark.parametrize(
    ("disabled_reason", "state"),
    [
        ("requirements.past_due", ("requirements.past_due", None)),
        ("under_review", ("under_review", None)),
        ("rejected.fraud", (None, "rejected.fraud")),
    ],
)
async def test_only_a_rejection_closes_an_account(
    provider: StripeConnectProvider, disabled_reason: str, state: tuple[str | None, str | None]
) -> None:
    """A new account is ``requirements.past_due`` at Stripe: something to do, not closed."""
    account = recorded("connect_account_created")
    account["requirements"]["disabled_reason"] = disabled_reason
    body = event("account.updated", account, account=account["id"], created=1767830001)
    parsed = provider.parse_webhook(body, signed(body))
    assert isinstance(parsed, PayeeAccountUpdated)
    due, closed = state
    assert parsed.account.disabled_reason == closed
    assert (due in parsed.account.requirements_due) is (due is not None)
    assert "external_account" in parsed.account.requirements_due
    assert parsed.account.version == 1767830001


def _stale(body: bytes) -> dict[str, str]:
    return signed(body, timestamp=int(time.time()) - TOLERANCE_S - 60)


@pytest.mark.parametrize(
    ("body", "headers", "code"),
    [
        pytest.param(
            raw("payout.failed"),
            signed(raw("payout.failed"), "whsec_x"),
            "bad_signature",
            id="other-secret",
        ),
        pytest.param(
            raw("payout.failed"),
            signed(raw("payout.failed"), CHECKOUT_SECRET),
            "bad_signature",
            id="checkouts-secret",
        ),
        pytest.param(
            raw("payout.paid").replace(b'"amount": 250', b'"amount": 25000'),
            signed(raw("payout.paid")),
            "bad_signature",
            id="tampered",
        ),
        pytest.param(raw("payout.paid"), _stale(raw("payout.paid")), "stale_webhook", id="stale"),
        pytest.param(raw("payout.paid"), {}, "missing_signature", id="unsigned"),
        pytest.param(b"{not json", None, "malformed_webhook", id="not-json"),
        pytest.param(b"[]", None, "malformed_webhook", id="json-array"),
        pytest.param(
            _variant("account.updated", lambda b: b["data"]["object"].update(payouts_enabled="y")),
            None,
            "malformed_webhook",
            id="flag-as-text",
        ),
        pytest.param(
            _variant(
                "account.updated",
                lambda b: b["data"]["object"]["requirements"].update(currently_due="all"),
            ),
            None,
            "malformed_webhook",
            id="due-not-a-list",
        ),
        pytest.param(
            _variant("account.updated", lambda b: b.update(created="yesterday")),
            None,
            "malformed_webhook",
            id="no-order",
        ),
        pytest.param(
            _variant("payout.paid", lambda b: b["data"]["object"].update(amount=-5)),
            None,
            "malformed_webhook",
            id="negative-amount",
        ),
        pytest.param(
            _variant("transfer.reversed", lambda b: b["data"]["object"].update(currency=None)),
            None,
            "malformed_webhook",
            id="no-currency",
        ),
    ],
)
async def test_bad_delivery_is_rejected(
    provider: StripeConnectProvider, body: bytes, headers: dict[str, str] | None, code: str
) -> None:
    with pytest.raises(WebhookRejected) as caught:
        provider.parse_webhook(body, signed(body) if headers is None else headers)
    assert caught.value.code == code, caught.value.detail


# --- 2. calls to Stripe ----------------------------------------------------------------------


async def test_an_express_account_once_per_creator_and_a_link_back_to_the_studio(
    stub: StripeStub, fake: FakeConnect, provider: StripeConnectProvider
) -> None:
    first = await provider.create_account(42, "MX", "MXN")
    again = await provider.create_account(42, "MX", "MXN")
    assert first == again  # the same key: Stripe answers the same account
    assert len(fake.accounts) == 1
    assert first.account_id.startswith("acct_")
    assert (first.details_submitted, first.payouts_enabled, first.disabled_reason) == (
        False,
        False,
        None,
    )
    assert "external_account" in first.requirements_due
    assert first.version == 0  # an answer, not a report: any event is newer
    sent = stub.requests[0]
    assert (sent.method, sent.path) == ("POST", "/v1/accounts")
    assert sent.headers["idempotency-key"] == "account:42"
    assert sent.headers["authorization"] == f"Bearer {API_KEY}"
    assert sent.form == {
        "type": "express",
        "country": "MX",
        "default_currency": "mxn",
        "capabilities[transfers][requested]": "true",
        "settings[payouts][schedule][interval]": "manual",
        "metadata[creator_id]": "42",
    }
    url = await provider.onboarding_link(first.account_id, SITE, "/studio/earnings")
    assert url.startswith(f"{LINK_PREFIX}{first.account_id}/")
    link = stub.requests[-1]
    assert link.form == {
        "account": first.account_id,
        "refresh_url": f"{SITE}/studio/earnings",
        "return_url": f"{SITE}/studio/earnings",
        "type": "account_onboarding",
    }
    assert await provider.get_account(first.account_id) == first


def _transfer(account_id: str, payout_id: str = "po_gw_a1", amount: int = 250) -> TransferRequest:
    return TransferRequest(payout_id, account_id, amount, "USD")


async def _verified_account(fake: FakeConnect, provider: StripeConnectProvider) -> str:
    account_id = (await provider.create_account(7, "US", "USD")).account_id
    fake.verify(account_id)
    return account_id


async def test_a_transfer_then_a_bank_payout_each_under_the_payouts_key(
    stub: StripeStub, fake: FakeConnect, provider: StripeConnectProvider
) -> None:
    account_id = await _verified_account(fake, provider)
    before = len(stub.requests)
    made = await provider.create_transfer(_transfer(account_id))
    find, transfer, payout = stub.requests[before:]
    assert (find.method, find.path, find.form) == (
        "GET",
        "/v1/transfers",
        {"transfer_group": "po_gw_a1", "limit": "1"},
    )
    assert (transfer.method, transfer.path) == ("POST", "/v1/transfers")
    assert transfer.headers["idempotency-key"] == "po_gw_a1"
    assert transfer.form == {
        "amount": "250",
        "currency": "usd",
        "destination": account_id,
        "transfer_group": "po_gw_a1",
        "metadata[payout_id]": "po_gw_a1",
    }
    assert (payout.method, payout.path) == ("POST", "/v1/payouts")
    assert payout.headers["stripe-account"] == account_id
    assert payout.headers["idempotency-key"] == "payout:po_gw_a1"
    assert payout.form == {
        "amount": "250",
        "currency": "usd",
        "metadata[payout_id]": "po_gw_a1",
        "metadata[transfer_id]": made.transfer_id,
    }
    assert (made.payout_id, made.amount_minor, made.currency) == ("po_gw_a1", 250, "USD")
    # Asked again (even after Stripe forgot the key): the same transfer, nothing new.
    fake.forget_keys()
    assert await provider.create_transfer(_transfer(account_id)) == made
    assert (len(fake.transfers), len(fake.payouts)) == (1, 1)


async def test_a_retry_reads_every_page_of_the_accounts_payouts(
    stub: StripeStub, fake: FakeConnect, provider: StripeConnectProvider
) -> None:
    """The earlier bank payout is found past the first page (Stripe lists newest first)."""
    account_id = await _verified_account(fake, provider)
    made = await provider.create_transfer(_transfer(account_id, "po_gw_old"))
    for i in range(150):  # this creator's later payouts, each its own
        await provider.create_transfer(_transfer(account_id, f"po_gw_{i}"))
    fake.forget_keys()
    pages = fake.pages_read
    assert await provider.create_transfer(_transfer(account_id, "po_gw_old")) == made
    assert fake.pages_read - pages == 2
    assert (len(fake.transfers), len(fake.payouts)) == (151, 151)
    assert {r.headers.get("stripe-account") for r in stub.requests if r.path == "/v1/payouts"} == {
        account_id
    }


async def test_a_refusal_makes_nothing_and_says_why(
    stub: StripeStub, fake: FakeConnect, provider: StripeConnectProvider
) -> None:
    unverified = (await provider.create_account(8, "US", "USD")).account_id
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.create_transfer(_transfer(unverified))
    assert not isinstance(caught.value, ProviderTimeout)
    assert caught.value.code == "payouts_disabled"
    assert "insufficient_capabilities_for_transfer" in caught.value.detail
    assert (fake.transfers, fake.payouts) == ({}, {})
    assert stub.requests[-1].path == "/v1/transfers"  # no payout asked for, no retry

    account_id = await _verified_account(fake, provider)
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.create_transfer(_transfer(account_id, "po_gw_big", MAX_TRANSFER + 1))
    assert caught.value.code == "transfer_refused"
    assert fake.transfers == {}


async def test_a_refused_bank_payout_takes_the_transfer_back(
    fake: FakeConnect, provider: StripeConnectProvider
) -> None:
    account_id = await _verified_account(fake, provider)
    fake.accounts[account_id]["payouts_enabled"] = False  # the bank account was removed
    with pytest.raises(ProviderUnavailable) as caught:
        await provider.create_transfer(_transfer(account_id))
    assert caught.value.code == "payouts_disabled"
    (transfer,) = fake.transfers.values()
    assert (transfer["reversed"], len(fake.reversals), fake.payouts) == (True, 1, {})


async def test_an_outage_or_a_late_answer_is_unknown_and_the_same_key_pays_once(
    stub: StripeStub, fake: FakeConnect, provider: StripeConnectProvider
) -> None:
    account_id = await _verified_account(fake, provider)
    for _ in range(3):
        stub.reply(500, {"error": {"type": "api_error", "message": "Something went wrong."}})
    with pytest.raises(ProviderTimeout):
        await provider.create_transfer(_transfer(account_id))
    assert fake.transfers == {}
    # Stripe takes the transfer but every answer arrives after the SDK stopped waiting.
    stub.answer_late(count=3, late_s=LATE_S, only=TRANSFER_POST)
    with pytest.raises(ProviderTimeout):
        await provider.create_transfer(_transfer(account_id))
    assert len(fake.transfers) == 1
    await asyncio.sleep(LATE_S)  # the late answers are written to closed sockets
    made = await provider.create_transfer(_transfer(account_id))
    assert list(fake.transfers) == [made.transfer_id]
    assert len(fake.payouts) == 1
    keys = [r.headers.get("idempotency-key") for r in stub.requests if r.path == "/v1/transfers"]
    assert set(keys) - {None} == {"po_gw_a1"}


# --- 3. through the API, on both databases ---------------------------------------------------


def settings_for(stub: StripeStub, **overrides: Any) -> dict[str, Any]:
    return {
        "payout_provider": "stripe",
        "payout_min_cents": 50,
        "stripe_api_key": API_KEY,
        "stripe_connect_webhook_secret": SECRET,
        "stripe_connect_transfers_webhook_secret": TRANSFERS_SECRET,
        "stripe_api_base": stub.url,
        "stripe_request_timeout_s": TIMEOUT_S,
        **overrides,
    }


@pytest.fixture
def connect_app(db_url: DatabaseUrl, stub: StripeStub) -> AppFactory:
    factory = make_app_factory(db_url)

    def with_connect(**overrides: Any) -> Any:
        return factory(**settings_for(stub, **overrides))

    return with_connect


async def deliver(client: httpx.AsyncClient, body: bytes, secret: str = SECRET) -> httpx.Response:
    return await client.post(
        WEBHOOK,
        content=body,
        headers={"Content-Type": "application/json; charset=utf-8", **signed(body, secret)},
    )


async def onboarded(client: httpx.AsyncClient, fake: FakeConnect) -> tuple[Person, str]:
    """A creator whose Express account Stripe verified, told by ``account.updated``."""
    creator = await register_person(client, "creator")
    r = await creator.post("/v1/creators/me/payee/onboarding")
    assert r.status_code == 200, r.text
    account_id = urlsplit(r.json()["url"]).path.split("/")[3]
    assert fake.accounts[account_id]["metadata"] == {"creator_id": str(creator.id)}
    fake.verify(account_id)
    r = await deliver(
        client, event("account.updated", fake.accounts[account_id], account=account_id)
    )
    assert r.status_code == 200, r.text
    assert (await creator.get("/v1/creators/me/payee")).json()["state"] == "verified"
    return creator, account_id


async def earn(client: httpx.AsyncClient, creator: Person) -> None:
    """500 diamonds for the creator, from a viewer's gift."""
    viewer = await register_person(client)
    await viewer.buy(700)
    stream = await creator.go_live()
    assert (await viewer.gift(stream, "money_gun")).status_code == 201


async def approve(client: httpx.AsyncClient, creator: Person) -> tuple[str, dict[str, Any]]:
    admin = await make_admin(client)
    r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "cash"})
    assert r.status_code == 201, r.text
    payout_id: str = r.json()["id"]
    r = await admin.post(f"/v1/admin/payouts/{payout_id}/approve")
    assert r.status_code == 200, r.text
    return payout_id, dict(r.json())


async def approved_payout(client: httpx.AsyncClient, fake: FakeConnect) -> tuple[Person, str, str]:
    """A verified creator's 500 diamonds, approved: the transfer and the bank payout made."""
    creator, account_id = await onboarded(client, fake)
    await earn(client, creator)
    payout_id, approved = await approve(client, creator)
    assert approved["status"] == "processing"
    return creator, account_id, payout_id


async def payout_of(creator: Person, payout_id: str) -> dict[str, Any]:
    r = await creator.get(f"/v1/payouts/{payout_id}")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def wait_for(creator: Person, payout_id: str, status: str) -> dict[str, Any]:
    for _ in range(300):
        payout = await payout_of(creator, payout_id)
        if payout["status"] == status:
            return payout
        await asyncio.sleep(0.02)
    raise AssertionError(f"payout {payout_id} is {payout['status']}, not {status}")


def bank_event(fake: FakeConnect, kind: str, account_id: str, **change: Any) -> bytes:
    (payout,) = fake.payouts.values()
    return event(kind, payout | change, account=account_id)


async def test_a_creator_onboards_at_stripe_and_is_paid_once(
    connect_app: AppFactory, stub: StripeStub, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app() as client:
        creator, account_id = await onboarded(client, fake)
        # Onboarding again: a fresh link to the same account.
        r = await creator.post("/v1/creators/me/payee/onboarding")
        assert r.json()["url"].startswith(f"{LINK_PREFIX}{account_id}/")
        assert len(fake.accounts) == 1
        await earn(client, creator)
        payout_id, approved = await approve(client, creator)
        assert approved["status"] == "processing"
        (transfer,) = fake.transfers.values()
        assert approved["provider_transfer_id"] == transfer["id"]
        sent = next(r for r in stub.requests if (r.method, r.path) == ("POST", "/v1/transfers"))
        assert sent.headers["idempotency-key"] == payout_id
        assert (sent.form["amount"], sent.form["destination"]) == ("250", account_id)
        assert (transfer["amount"], transfer["metadata"]) == (250, {"payout_id": payout_id})

        paid = bank_event(fake, "payout.paid", account_id, status="paid")
        for _ in range(3):
            r = await deliver(client, paid)
            assert (r.status_code, r.json()) == (200, {"received": True})
        payout = await payout_of(creator, payout_id)
        assert (payout["status"], payout["provider"]) == ("paid", "stripe")
        assert (await creator.wallet())["diamonds"] == 0
        assert (len(fake.transfers), len(fake.payouts), len(fake.reversals)) == (1, 1, 0)
    ledger_ok(db_url)


async def test_a_failed_bank_payout_takes_the_money_back_and_returns_the_diamonds_once(
    connect_app: AppFactory, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app() as client:
        creator, account_id, payout_id = await approved_payout(client, fake)
        paid = bank_event(fake, "payout.paid", account_id, status="paid")
        failed = bank_event(
            fake, "payout.failed", account_id, status="failed", failure_code="account_closed"
        )
        # Forged or stale: nothing changes.
        assert_problem(await deliver(client, failed, "whsec_attacker"), 400, "bad_signature")
        r = await client.post(
            WEBHOOK,
            content=failed,
            headers=signed(failed, timestamp=int(time.time()) - 3600),
        )
        assert_problem(r, 400, "stale_webhook")
        assert (await payout_of(creator, payout_id))["status"] == "processing"
        assert fake.reversals == {}

        # The failure comes before the late "paid", each twice, then Stripe's own
        # transfer.reversed for the reversal giftwave made, twice, from the other endpoint.
        for body in (failed, paid, failed, paid):
            r = await deliver(client, body)
            assert r.status_code == 200, r.text
        (transfer,) = fake.transfers.values()
        assert (transfer["reversed"], len(fake.reversals)) == (True, 1)
        reversed_ = event("transfer.reversed", transfer)
        for _ in range(2):
            assert (await deliver(client, reversed_, TRANSFERS_SECRET)).status_code == 200
        payout = await payout_of(creator, payout_id)
        assert (payout["status"], payout["provider_reason"]) == ("returned", "account_closed")
        assert (await creator.wallet())["diamonds"] == 500
        assert len(fake.reversals) == 1
    ledger_ok(db_url)


async def test_no_diamonds_come_back_before_the_money_does(
    connect_app: AppFactory, stub: StripeStub, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app() as client:
        creator, account_id, payout_id = await approved_payout(client, fake)
        failed = bank_event(fake, "payout.failed", account_id, failure_code="no_account")
        for _ in range(3):  # the reversal, and the SDK's two retries
            stub.reply(500, {"error": {"type": "api_error", "message": "Something went wrong."}})
        assert_problem(await deliver(client, failed), 503, "provider_timeout")
        assert (await payout_of(creator, payout_id))["status"] == "processing"
        assert (await creator.wallet())["diamonds"] == 0
        # A late "paid" arrives before Stripe redelivers the failure: the money is taken back
        # now, then the diamonds; the redelivery changes nothing more.
        assert (await deliver(client, bank_event(fake, "payout.paid", account_id))).is_success
        (transfer,) = fake.transfers.values()
        assert (transfer["reversed"], len(fake.reversals)) == (True, 1)
        for _ in range(2):
            assert (await deliver(client, failed)).status_code == 200
        payout = await payout_of(creator, payout_id)
        assert (payout["status"], payout["provider_reason"]) == ("returned", "no_account")
        assert (await creator.wallet())["diamonds"] == 500
        assert len(fake.reversals) == 1
    ledger_ok(db_url)


async def test_a_transfer_reversed_at_stripe_returns_a_paid_payout(
    connect_app: AppFactory, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app() as client:
        creator, account_id, payout_id = await approved_payout(client, fake)
        assert (await deliver(client, bank_event(fake, "payout.paid", account_id))).is_success
        assert (await payout_of(creator, payout_id))["status"] == "paid"
        (transfer,) = fake.transfers.values()
        transfer |= {"reversed": True, "amount_reversed": transfer["amount"]}  # the Dashboard
        reversed_ = event("transfer.reversed", transfer)
        # Signed with Checkout's secret: that endpoint does not send here.
        assert_problem(await deliver(client, reversed_, CHECKOUT_SECRET), 400, "bad_signature")
        for _ in range(2):
            assert (await deliver(client, reversed_, TRANSFERS_SECRET)).status_code == 200
        payout = await payout_of(creator, payout_id)
        assert (payout["status"], payout["provider_reason"]) == ("returned", "transfer_reversed")
        assert (await creator.wallet())["diamonds"] == 500
    ledger_ok(db_url)


async def unanswered_payout(
    client: httpx.AsyncClient, stub: StripeStub, fake: FakeConnect
) -> tuple[Person, str, str]:
    """An approved payout whose transfer Stripe made, every answer arriving too late (the SDK
    tries three times): processing, with no transfer id and no bank payout yet."""
    creator, account_id = await onboarded(client, fake)
    await earn(client, creator)
    stub.answer_late(count=3, late_s=LATE_S, only=TRANSFER_POST)
    payout_id, approved = await approve(client, creator)
    assert (approved["status"], approved["provider_transfer_id"]) == ("processing", None)
    assert approved["transfer_attempts"] == 1
    assert len(fake.transfers) == 1  # taken by Stripe all the same
    assert fake.payouts == {}
    return creator, account_id, payout_id


async def test_a_late_answer_stays_processing_and_the_sweeper_pays_once(
    connect_app: AppFactory, stub: StripeStub, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app(**SWEEP) as client:
        creator, account_id, payout_id = await unanswered_payout(client, stub, fake)
        for _ in range(300):
            payout = await payout_of(creator, payout_id)
            if payout["provider_transfer_id"]:
                break
            await asyncio.sleep(0.02)
        (transfer,) = fake.transfers.values()
        assert payout["provider_transfer_id"] == transfer["id"]
        assert payout["transfer_attempts"] >= 2
        assert (len(fake.transfers), len(fake.payouts)) == (1, 1)
        assert (await deliver(client, bank_event(fake, "payout.paid", account_id))).is_success
        assert (await payout_of(creator, payout_id))["status"] == "paid"
        assert (await creator.wallet())["diamonds"] == 0
    ledger_ok(db_url)


async def test_an_account_disabled_after_approval_gets_the_payout_returned_once(
    connect_app: AppFactory, stub: StripeStub, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app(**SWEEP) as client:
        creator, account_id, payout_id = await unanswered_payout(client, stub, fake)
        # Stripe closes the account before the sweeper asks again; an older report of it
        # arriving late changes nothing.
        fake.disable(account_id)
        closed = event("account.updated", fake.accounts[account_id], account=account_id)
        older = event(
            "account.updated",
            recorded("account.updated")["data"]["object"] | {"id": account_id},
            account=account_id,
            created=int(time.time()) - 60,
        )
        for body in (closed, older, closed):
            assert (await deliver(client, body)).status_code == 200
        payee = (await creator.get("/v1/creators/me/payee")).json()
        assert (payee["state"], payee["missing"]) == ("disabled", ["disabled:rejected.fraud"])

        payout = await wait_for(creator, payout_id, "returned")
        assert payout["provider_reason"] == "payee_not_ready:disabled"
        assert (await creator.wallet())["diamonds"] == 500
        # The transfer made without an answer was found and taken back; no bank payout.
        (transfer,) = fake.transfers.values()
        assert (transfer["reversed"], len(fake.reversals), fake.payouts) == (True, 1, {})
        body = event("transfer.reversed", transfer)
        assert (await deliver(client, body, TRANSFERS_SECRET)).status_code == 200
        assert (await creator.wallet())["diamonds"] == 500
        assert (await payout_of(creator, payout_id))["status"] == "returned"
    ledger_ok(db_url)


async def test_the_studio_button_leads_to_stripe_and_an_outage_is_a_503(
    connect_app: AppFactory, stub: StripeStub, fake: FakeConnect
) -> None:
    async with connect_app() as client:
        creator = await register_person(client, "creator")
        token = creator.auth["Authorization"].removeprefix("Bearer ")
        page = await client.get("/studio/earnings", headers={"Cookie": f"gw_session={token}"})
        assert 'id="payee" data-state="none"' in page.text
        assert 'id="payee-onboard"' in page.text
        for _ in range(3):
            stub.reply(503, {"error": {"type": "api_error", "message": "overloaded"}})
        r = await creator.post("/v1/creators/me/payee/onboarding")
        assert_problem(r, 503, "provider_unavailable")
        assert (await creator.get("/v1/creators/me/payee")).json()["state"] == "none"
        r = await creator.post("/v1/creators/me/payee/onboarding")
        assert r.json()["url"].startswith(LINK_PREFIX)
        db = app_services(client.app).db  # type: ignore[attr-defined]
        with db.connect() as conn:
            row = conn.execute(select(payees.c.provider, payees.c.state)).one()
        assert tuple(row) == ("stripe", "pending")
        # Someone else's report, or a sandbox-shaped body, at Stripe's URL: nothing stored.
        stranger = event(
            "account.updated",
            fake.accounts[next(iter(fake.accounts))] | {"id": "acct_1QyBsomeoneElse"},
            account="acct_1QyBsomeoneElse",
        )
        assert (await deliver(client, stranger)).status_code == 200
        huge = b"{" + b" " * 70_000 + b"}"
        assert_problem(await deliver(client, huge), 413, "payload_too_large")
        assert_problem(
            await client.post("/v1/payouts/webhooks/sandbox", content=b"{}"),
            404,
            "unknown_provider",
        )


# --- configuration ---------------------------------------------------------------------------


def test_config_check_refuses_stripe_payouts_without_keys_or_with_checkouts_secret() -> None:
    def errors(**values: Any) -> set[str]:
        found = unsafe_combinations(Settings(**values))
        return {f.variable for f in found if f.level == "error"}

    assert "GIFTWAVE_PAYOUT_PROVIDER" in errors(payout_provider="stripe")
    assert "GIFTWAVE_PAYOUT_PROVIDER" in errors(payout_provider="stripe", stripe_api_key=API_KEY)
    assert "GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET" in errors(
        payout_provider="stripe",
        stripe_api_key=API_KEY,
        stripe_webhook_secret=SECRET,
        stripe_connect_webhook_secret=SECRET,
    )
    good = {
        "payout_provider": "stripe",
        "stripe_api_key": API_KEY,
        "stripe_connect_webhook_secret": SECRET,
    }
    assert errors(**good) == set()
    warnings = {f.variable for f in unsafe_combinations(Settings(**good)) if f.level == "warning"}
    assert "GIFTWAVE_STRIPE_CONNECT_TRANSFERS_WEBHOOK_SECRET" in warnings
    public = {"public_url": "https://gifts.example", "payment_provider": "stripe"}
    assert "GIFTWAVE_PAYOUT_PROVIDER" in errors(**public, payout_provider="sandbox")
    shown = dict(
        effective_settings(
            Settings(**good, stripe_connect_transfers_webhook_secret=TRANSFERS_SECRET)
        )
    )
    assert shown["GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET"] == MASK
    assert shown["GIFTWAVE_STRIPE_CONNECT_TRANSFERS_WEBHOOK_SECRET"] == MASK
    assert SECRET not in repr(shown)
    assert TRANSFERS_SECRET not in repr(shown)


async def test_the_app_refuses_to_start_stripe_payouts_without_the_connect_secret(
    db_url: DatabaseUrl, stub: StripeStub
) -> None:
    factory = make_app_factory(db_url)
    with pytest.raises(Exception, match="GIFTWAVE_STRIPE_CONNECT_WEBHOOK_SECRET"):
        async with factory(**settings_for(stub, stripe_connect_webhook_secret=None)):
            pass
