"""The payout provider's fees in the ledger, and transfer events that do not match their
payout, on SQLite and PostgreSQL: a paid transfer's fee is posted once, per currency, from the
platform's balance at the provider to its fees expense; a failed transfer costs nothing; a
reversal keeps the fee; an event whose amount or currency differs changes nothing but is
recorded and flagged for an operator. `giftwave ledger verify` is clean after each."""

from __future__ import annotations

import logging
from typing import Any

import httpx
import orjson
import pytest
from economy_client import AppFactory, Person, economy_app, make_admin, register
from sqlalchemy import func, select, update
from test_economy_payouts import ledger_ok
from test_payouts_provider import (
    PROVIDER,
    approved_payout,
    deliver,
    earn,
    onboard,
    sandbox,
    wait_for,
)
from test_reconcile import reconcile_json

from giftwave.api.state import app_services
from giftwave.db.tables import payout_events, sandbox_payout_transfers, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.payout_transfers import fee_id
from giftwave.ledger.accounts import find_account
from giftwave.metrics import PAYOUT_TRANSFER_MISMATCHES
from giftwave.payments.payout_base import TransferEventKind
from giftwave.payments.sandbox_payouts import SandboxFee

__all__ = ["economy_app"]

# 25 centavos (or cents) and 0.25 % of each paid transfer.
FEES = {"payout_sandbox_fee_fixed_minor": 25, "payout_sandbox_fee_bps": 25}
ABROAD = {"payout_currency_by_country": {"MX": "MXN"}, "payout_fx_rate_micros": {"MXN": 17_250_000}}


def db_of(client: httpx.AsyncClient) -> Any:
    return app_services(client.app).db  # type: ignore[attr-defined]


def balance(client: httpx.AsyncClient, name: str) -> int | None:
    with db_of(client).connect() as conn:
        account = find_account(conn, name)
    return None if account is None else account.balance


def fee_transfers(client: httpx.AsyncClient) -> list[tuple[str, int, str, str]]:
    with db_of(client).connect() as conn:
        rows = conn.execute(
            select(transfers.c.id, transfers.c.amount, transfers.c.asset, transfers.c.code).where(
                transfers.c.code == "fee"
            )
        ).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def sandbox_transfer_id(client: httpx.AsyncClient, payout_id: str) -> str:
    with db_of(client).connect() as conn:
        return str(
            conn.execute(
                select(sandbox_payout_transfers.c.id).where(
                    sandbox_payout_transfers.c.idempotency_key == payout_id
                )
            ).scalar_one()
        )


async def paid_abroad(client: httpx.AsyncClient) -> tuple[Person, Person, dict[str, Any]]:
    """A creator in Mexico, an admin, and the creator's payout of $2.50 approved and paid."""
    creator = await register(client, "creator", country="MX")
    admin = await make_admin(client)
    await earn(client, creator)
    await onboard(client, creator, "approve")
    payout_id = await approved_payout(client, creator, admin)
    return creator, admin, await wait_for(creator, payout_id, "paid")


def test_the_sandbox_fee_is_fixed_plus_basis_points_rounded_half_up() -> None:
    fee = SandboxFee(fixed_minor=25, bps=25)
    assert fee.of(0) == 25
    assert fee.of(4312) == 25 + 11  # 10.78 rounds up
    assert fee.of(250) == 25 + 1  # 0.625 rounds up
    assert fee.of(199) == 25 + 0  # 0.4975 rounds down
    assert SandboxFee().of(10**9) == 0


async def test_a_paid_transfer_posts_its_fee_once_in_the_payee_currency(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER, **FEES, **ABROAD) as client:
        _, _, paid = await paid_abroad(client)
        payout_id = paid["id"]
        assert (paid["payout_amount_minor"], paid["payout_currency"]) == (4312, "MXN")
        assert paid["fee_minor"] == 36
        assert fee_transfers(client) == [(fee_id(payout_id), 36, "MXN", "fee")]
        # The expense is debited, the platform's balance at the provider credited.
        assert balance(client, "platform:payout_fees:mxn") == -36
        assert balance(client, "platform:payout_provider:sandbox:mxn") == 36
        # The paid event again, twice: the fee is not posted again.
        body = await sandbox(client).settle(
            paid["provider_transfer_id"], TransferEventKind.PAID, send=False
        )
        for _ in range(2):
            r = await deliver(client, body)
            assert r.status_code == 200, r.text
        assert fee_transfers(client) == [(fee_id(payout_id), 36, "MXN", "fee")]
    ledger_ok(db_url)


async def test_a_failed_transfer_costs_nothing_and_a_reversal_keeps_the_fee(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER, **FEES) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        await onboard(client, creator, "approve", bank="fails")
        failed_id = await approved_payout(client, creator, admin)
        failed = await wait_for(creator, failed_id, "returned")
        assert failed["fee_minor"] is None
        assert fee_transfers(client) == []

        # Paid, then taken back by the bank: the diamonds come back, the fee stays spent.
        await onboard(client, creator, "approve", bank="pays")
        r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "second"})
        assert r.status_code == 201, r.text
        paid_id = r.json()["id"]
        r = await admin.post(f"/v1/admin/payouts/{paid_id}/approve")
        assert r.status_code == 200, r.text
        paid = await wait_for(creator, paid_id, "paid")
        assert paid["fee_minor"] == 26  # 25 + 0.625 rounded
        body = await sandbox(client).settle(
            paid["provider_transfer_id"], TransferEventKind.REVERSED, "bank_recall", send=False
        )
        assert (await deliver(client, body)).status_code == 200
        returned = await wait_for(creator, paid_id, "returned")
        assert returned["fee_minor"] == 26
        assert (await creator.wallet())["diamonds"] == 500
        assert fee_transfers(client) == [(fee_id(paid_id), 26, "USD", "fee")]
        assert balance(client, "platform:payout_fees:usd") == -26
    ledger_ok(db_url)


@pytest.mark.parametrize("change", [{"amount_minor": 2_500}, {"currency": "EUR"}])
async def test_an_event_that_does_not_match_its_payout_is_recorded_and_flagged(
    economy_app: AppFactory,
    db_url: DatabaseUrl,
    caplog: pytest.LogCaptureFixture,
    change: dict[str, Any],
) -> None:
    caplog.set_level(logging.INFO)
    async with economy_app(**PROVIDER, **FEES) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        # The transfer is made but its answer is lost: no webhook of its own arrives.
        await onboard(client, creator, "approve", bank="answer_lost")
        payout_id = await approved_payout(client, creator, admin)
        transfer_id = sandbox_transfer_id(client, payout_id)
        good = await sandbox(client).settle(transfer_id, TransferEventKind.PAID, send=False)
        wrong = orjson.loads(good)
        wrong["id"] += "x"
        wrong["data"].update(change)
        before = PAYOUT_TRANSFER_MISMATCHES._value.get()
        for _ in range(2):  # once, and once redelivered: reported once
            r = await deliver(client, orjson.dumps(wrong))
            assert r.status_code == 200, r.text
        payout = (await admin.get(f"/v1/payouts/{payout_id}")).json()
        assert (payout["status"], payout["fee_minor"]) == ("processing", None)
        assert payout["provider_transfer_id"] is None
        assert payout["flag"] == f"transfer_mismatch:{wrong['id']}"
        assert fee_transfers(client) == []
        assert PAYOUT_TRANSFER_MISMATCHES._value.get() == before + 1
        lines = [r for r in caplog.records if r.getMessage() == "audit.payout_transfer_mismatch"]
        assert len(lines) == 1
        with db_of(client).connect() as conn:
            stored = conn.execute(
                select(func.count())
                .select_from(payout_events)
                .where(payout_events.c.event_id == wrong["id"])
            ).scalar_one()
        assert stored == 1
        # The console lists it among the payouts being paid, with its flag.
        queue = (await admin.get("/v1/admin/payouts", params={"status": "processing"})).json()
        assert [(p["id"], p["flag"]) for p in queue] == [(payout_id, payout["flag"])]

        # The provider's true report still ends it; the flag stays for the operator.
        assert (await deliver(client, good)).status_code == 200
        paid = await wait_for(creator, payout_id, "paid")
        assert (paid["fee_minor"], paid["flag"]) == (26, payout["flag"])
    ledger_ok(db_url)


async def test_the_report_shows_gross_fees_net_and_the_statement_each_payout(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER, **FEES, **ABROAD) as client:
        creator, admin, paid = await paid_abroad(client)
        payout_id = paid["id"]

        report = (await admin.get("/v1/admin/analytics/economy")).json()
        assert report["payouts"] == [
            {
                "currency": "MXN",
                "payouts": 1,
                "gross_minor": 4312 + 36,
                "fees_minor": 36,
                "net_minor": 4312,
            }
        ]
        r = await admin.get(
            "/v1/admin/analytics/economy", params={"format": "csv", "table": "payouts"}
        )
        assert r.text.splitlines() == [
            "currency,payouts,gross_minor,fees_minor,net_minor",
            "MXN,1,4348,36,4312",
        ]
        token = admin.auth["Authorization"].removeprefix("Bearer ")
        page = await client.get("/admin/economy", headers={"Cookie": f"gw_session={token}"})
        assert page.status_code == 200, page.text
        assert 'id="payout-money"' in page.text
        for shown in ("MX$43.48", "MX$0.36", "MX$43.12"):  # gross, fees, net
            assert shown in page.text

        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["payout_list"] == [
            {
                "id": payout_id,
                "requested_at_us": paid["requested_at_us"],
                "status": "paid",
                "diamonds": 500,
                "amount_cents": 250,
                "provider": "sandbox",
                "provider_transfer_id": paid["provider_transfer_id"],
                "provider_reason": None,
                "payout_currency": "MXN",
                "payout_amount_minor": 4312,
                "fx_rate_micros": 17_250_000,
                # Paid in pesos at the operator's rate: no provider's conversion.
                "received_amount_minor": None,
                "received_currency": None,
                "provider_fx_rate_micros": None,
            }
        ]
        assert statement["share_percent_low"] is not None  # the effective share stays
    ledger_ok(db_url)


async def test_reconcile_compares_the_fees_and_reports_one_the_books_disagree_on(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER, **FEES, **ABROAD) as client:
        _, _, paid = await paid_abroad(client)
        code, run = reconcile_json(db_url)
        assert (code, run["mismatches"]) == (0, [])
        # The payee's top-up, the payout and its fee, on both sides.
        assert run["records"] == {"ledger": 3, "provider": 3}
        # The provider's records say it charged another fee.
        with db_of(client).begin() as conn:
            conn.execute(
                update(sandbox_payout_transfers)
                .where(sandbox_payout_transfers.c.idempotency_key == paid["id"])
                .values(fee_minor=40)
            )
        code, run = reconcile_json(db_url)
        assert code == 1
        assert [(m["mismatch"], m["kind"], m["reference"]) for m in run["mismatches"]] == [
            ("amount_differs", "fee", paid["id"])
        ]
        (line,) = run["mismatches"]
        assert (line["ledger"]["amount_minor"], line["provider"]["amount_minor"]) == (36, 40)
        assert line["ledger"]["currency"] == line["provider"]["currency"] == "MXN"
