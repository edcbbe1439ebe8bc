"""Payouts through the sandbox payout provider, on SQLite and PostgreSQL: a creator onboards,
is verified by a signed webhook, requests a payout that an admin approves, and the provider's
transfer pays it; a failed transfer gives the diamonds back once, whatever the order and
repetition of its webhooks; a payee who is not ready is refused, naming what is missing; a
forged or stale webhook changes nothing; a lost answer is asked for again and never paid twice.
`giftwave ledger verify` is clean after each."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any
from urllib.parse import urlsplit

import httpx
from economy_client import (
    FAST,
    AppFactory,
    Clock,
    Person,
    assert_problem,
    clock,
    economy_app,
    make_admin,
    register,
)
from sqlalchemy import func, select
from test_economy_payouts import ledger_ok

from giftwave.analytics.reports import economy_report
from giftwave.analytics.rollup import Rollup
from giftwave.api.auth import SESSION_COOKIE
from giftwave.api.state import app_services
from giftwave.db.tables import payout_events, sandbox_payout_transfers, transfers
from giftwave.db.urls import DatabaseUrl
from giftwave.payments.payout_base import PayeeAccount, TransferEventKind
from giftwave.payments.sandbox_payouts import WEBHOOK_PATH, SandboxPayoutProvider
from giftwave.payments.signing import SIGNATURE_HEADER, signature_header

__all__ = ["clock", "economy_app"]

SECRET = FAST["sandbox_webhook_secret"]
assert isinstance(SECRET, str)
PROVIDER = {"payout_provider": "sandbox", "payout_min_cents": 50}
# A sweep every 50 ms, for a payout without an answer for a minute of the test's clock: the
# sweeper asks again only once the test moves the clock on (RETRY_DUE_H), however slow the
# machine is meanwhile.
SWEPT = PROVIDER | {"payout_sweep_interval_s": 0.05, "payout_transfer_retry_after_s": 60}
RETRY_DUE_H = 2 / 60


def sandbox(client: httpx.AsyncClient) -> SandboxPayoutProvider:
    provider = app_services(client.app).economy.payees.provider  # type: ignore[attr-defined,union-attr]
    assert isinstance(provider, SandboxPayoutProvider)
    return provider


def count(client: httpx.AsyncClient, table: Any) -> int:
    db = app_services(client.app).db  # type: ignore[attr-defined]
    with db.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table)).scalar_one())


async def onboard(
    client: httpx.AsyncClient, creator: Person, action: str, bank: str = "pays"
) -> str:
    """Start onboarding and decide at the sandbox's page as the creator; the page's path."""
    r = await creator.post("/v1/creators/me/payee/onboarding")
    assert r.status_code == 200, r.text
    path = urlsplit(r.json()["url"]).path
    client.cookies.set(SESSION_COOKIE, creator.auth["Authorization"].removeprefix("Bearer "))
    try:
        page = await client.get(path)
        assert page.status_code == 200, page.text
        r = await client.post(f"{path}/{action}", data={"bank": bank})
        assert r.status_code == 303, r.text
        assert "message=done" in r.headers["location"]
    finally:
        client.cookies.clear()
    return path


async def payee(creator: Person) -> dict[str, Any]:
    r = await creator.get("/v1/creators/me/payee")
    assert r.status_code == 200, r.text
    return dict(r.json())


async def deliver(
    client: httpx.AsyncClient, body: bytes, *, secret: str = SECRET, timestamp_s: int | None = None
) -> httpx.Response:
    header = signature_header(secret, body, timestamp_s=timestamp_s)
    return await client.post(
        WEBHOOK_PATH,
        content=body,
        headers={SIGNATURE_HEADER: header, "Content-Type": "application/json"},
    )


async def earn(client: httpx.AsyncClient, creator: Person) -> None:
    """500 diamonds for the creator, from a viewer's gift."""
    viewer = await register(client)
    await viewer.buy(700)
    stream = await creator.go_live()
    assert (await viewer.gift(stream, "money_gun")).status_code == 201


async def wait_for(creator: Person, payout_id: str, status: str) -> dict[str, Any]:
    for _ in range(200):
        r = await creator.get(f"/v1/payouts/{payout_id}")
        if r.json()["status"] == status:
            return dict(r.json())
        await asyncio.sleep(0.02)
    raise AssertionError(f"payout {payout_id} is {r.json()['status']}, not {status}")


async def approved_payout(client: httpx.AsyncClient, creator: Person, admin: Person) -> str:
    r = await creator.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "cash"})
    assert r.status_code == 201, r.text
    payout_id: str = r.json()["id"]
    r = await admin.post(f"/v1/admin/payouts/{payout_id}/approve")
    assert r.status_code == 200, r.text
    return payout_id


async def test_onboarded_creator_is_paid_through_the_provider(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        assert (await payee(creator))["state"] == "none"
        await onboard(client, creator, "approve")
        assert await payee(creator) == {
            "state": "verified",
            "missing": [],
            "provider": "sandbox",
            "country": "US",
            "currency": "USD",
            "service_agreement": None,  # the sandbox's one agreement
        }
        payout_id = await approved_payout(client, creator, admin)
        paid = await wait_for(creator, payout_id, "paid")
        assert paid["provider"] == "sandbox"
        assert paid["provider_transfer_id"].startswith("tr_sb_")
        assert (paid["diamonds"], paid["amount_minor"]) == (500, 250)
        assert (await creator.wallet())["diamonds"] == 0
        assert count(client, sandbox_payout_transfers) == 1
        # Approving again answers the payout as it is; no second transfer.
        r = await admin.post(f"/v1/admin/payouts/{payout_id}/approve")
        assert (r.status_code, r.json()["status"]) == (200, "paid")
        assert count(client, sandbox_payout_transfers) == 1
    ledger_ok(db_url)


async def test_a_failed_transfer_returns_the_diamonds_once_whatever_the_webhooks(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        await onboard(client, creator, "approve", bank="fails")
        payout_id = await approved_payout(client, creator, admin)
        returned = await wait_for(creator, payout_id, "returned")
        assert returned["provider_reason"] == "account_closed"
        assert (await creator.wallet())["diamonds"] == 500
        moved = count(client, transfers)
        transfer_id = returned["provider_transfer_id"]

        # The failure again, a late "paid", a reversal, each twice, in every order.
        provider = sandbox(client)
        late = [
            await provider.settle(transfer_id, kind, reason, send=False)
            for kind, reason in (
                (TransferEventKind.PAID, None),
                (TransferEventKind.FAILED, "account_closed"),
                (TransferEventKind.REVERSED, "bank_recall"),
            )
        ]
        for body in [*reversed(late), *late]:
            r = await deliver(client, body)
            assert r.status_code == 200, r.text
        again = await creator.get(f"/v1/payouts/{payout_id}")
        assert (again.json()["status"], again.json()["provider_reason"]) == (
            "returned",
            "account_closed",
        )
        assert (await creator.wallet())["diamonds"] == 500
        assert count(client, transfers) == moved  # nothing moved twice
        statement = (await creator.get("/v1/creators/me/statement")).json()
        assert statement["paid_out_diamonds"] == 0
        # The operator's queue lists it by its state, and the console offers that filter.
        queue = await admin.get("/v1/admin/payouts", params={"status": "returned"})
        assert [p["id"] for p in queue.json()] == [payout_id]
        client.cookies.clear()
        token = admin.auth["Authorization"].removeprefix("Bearer ")
        console = await client.get("/admin", headers={"Cookie": f"gw_session={token}"})
        assert '<option value="returned">' in console.text
        db = app_services(client.app).db  # type: ignore[attr-defined]
        Rollup(db).catch_up()
        with db.connect() as conn:
            report = economy_report(conn, payout_min_cents=50, diamond_value_usd_micros=5000)
        assert report.diamonds_paid_out == 0  # paid out, then given back
    ledger_ok(db_url)


async def test_a_payee_not_ready_is_refused_naming_what_is_missing(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER) as client:
        creator = await register(client, "creator")
        await earn(client, creator)
        ask = {"diamonds": 500, "idempotency_key": "k"}
        body = assert_problem(await creator.post("/v1/payouts", ask), 403, "payee_not_ready")
        assert body["missing"] == ["payee_account"]

        r = await creator.post("/v1/creators/me/payee/onboarding")
        assert r.status_code == 200, r.text
        body = assert_problem(await creator.post("/v1/payouts", ask), 403, "payee_not_ready")
        assert body["payee_state"] == "pending"
        assert "details_submitted" in body["missing"]

        await onboard(client, creator, "more_documents")
        state = await payee(creator)
        assert state["state"] == "restricted"
        assert "individual.verification.additional_document" in state["missing"]
        body = assert_problem(await creator.post("/v1/payouts", ask), 403, "payee_not_ready")
        assert body["missing"] == state["missing"]

        path = await onboard(client, creator, "approve")
        assert (await payee(creator))["state"] == "verified"
        # An older report arriving late changes nothing: the newest report stands.
        account_id = path.rsplit("/", 1)[1].split(".")[0]
        stale = PayeeAccount(account_id, False, False, ("external_account",), None, version=1)
        r = await deliver(client, sandbox(client).account_payload(stale))
        assert r.status_code == 200, r.text
        assert (await payee(creator))["state"] == "verified"

        await onboard(client, creator, "reject")
        body = assert_problem(await creator.post("/v1/payouts", ask), 403, "payee_not_ready")
        assert body["missing"] == ["disabled:rejected.other"]
        assert (await creator.wallet())["diamonds"] == 500
    ledger_ok(db_url)


async def test_forged_or_stale_payout_webhooks_change_nothing(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    async with economy_app(**PROVIDER) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        await onboard(client, creator, "approve", bank="fails")
        payout_id = await approved_payout(client, creator, admin)
        returned = await wait_for(creator, payout_id, "returned")
        events, moved = count(client, payout_events), count(client, transfers)
        body = json.dumps(
            {
                "id": "evt_forged",
                "type": "transfer.paid",
                "data": {
                    "transfer_id": returned["provider_transfer_id"],
                    "payout_id": payout_id,
                    "amount_minor": 250,
                    "currency": "USD",
                    "reason": None,
                },
            }
        ).encode()
        forged = await deliver(client, body, secret="whsec_someone_else")
        assert_problem(forged, 400, "bad_signature")
        stale = await deliver(client, body, timestamp_s=int(time.time()) - 3600)
        assert_problem(stale, 400, "stale_webhook")
        unsigned = await client.post(WEBHOOK_PATH, content=body)
        assert_problem(unsigned, 400, "missing_signature")
        huge = await deliver(client, b"{" + b" " * 70_000 + b"}")
        assert_problem(huge, 413, "payload_too_large")
        assert_problem(await deliver(client, b"[]"), 400, "malformed_webhook")
        # A verified account report for an account that is not ours: stored nowhere.
        stranger = PayeeAccount("acct_sb_nobody", True, True, (), None, version=9)
        r = await deliver(client, sandbox(client).account_payload(stranger))
        assert r.status_code == 200, r.text
        assert (count(client, payout_events), count(client, transfers)) == (events, moved)
        assert (await creator.get(f"/v1/payouts/{payout_id}")).json()["status"] == "returned"
        assert (await creator.wallet())["diamonds"] == 500
    ledger_ok(db_url)


async def test_a_lost_answer_is_asked_for_again_and_never_paid_twice(
    economy_app: AppFactory, db_url: DatabaseUrl, clock: Clock
) -> None:
    async with economy_app(**SWEPT) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        await onboard(client, creator, "approve", bank="answer_lost")
        payout_id = await approved_payout(client, creator, admin)
        waiting = (await creator.get(f"/v1/payouts/{payout_id}")).json()
        assert (waiting["status"], waiting["provider_transfer_id"]) == ("processing", None)
        assert waiting["transfer_attempts"] == 1
        assert count(client, sandbox_payout_transfers) == 1  # made at the provider all the same
        clock.advance(RETRY_DUE_H)
        paid = await wait_for(creator, payout_id, "paid")
        assert paid["transfer_attempts"] == 2
        assert count(client, sandbox_payout_transfers) == 1  # the same key: the same transfer
        assert (await creator.wallet())["diamonds"] == 0
    ledger_ok(db_url)


async def test_a_payee_disabled_after_approval_gets_the_payout_returned(
    economy_app: AppFactory, db_url: DatabaseUrl, clock: Clock
) -> None:
    async with economy_app(**SWEPT) as client:
        creator, admin = await register(client, "creator"), await make_admin(client)
        await earn(client, creator)
        await onboard(client, creator, "approve", bank="answer_lost")
        payout_id = await approved_payout(client, creator, admin)
        await onboard(client, creator, "reject")  # before the sweeper asks again
        waiting = (await creator.get(f"/v1/payouts/{payout_id}")).json()
        assert (waiting["status"], waiting["transfer_attempts"]) == ("processing", 1)
        clock.advance(RETRY_DUE_H)  # the sweeper asks again, the payee disabled by now
        returned = await wait_for(creator, payout_id, "returned")
        assert returned["transfer_attempts"] == 2
        assert returned["provider_reason"] == "payee_not_ready:disabled"
        assert (await creator.wallet())["diamonds"] == 500
    ledger_ok(db_url)


async def studio(client: httpx.AsyncClient, creator: Person, lang: str = "en") -> str:
    """The earnings page as the creator's browser gets it, in a language."""
    client.cookies.clear()
    token = creator.auth["Authorization"].removeprefix("Bearer ")
    r = await client.get(f"/studio/earnings?lang={lang}", headers={"Cookie": f"gw_session={token}"})
    assert r.status_code == 200, r.text
    return r.text


async def test_the_studio_shows_the_payee_state_what_is_missing_and_the_way_on(
    economy_app: AppFactory,
) -> None:
    async with economy_app(**PROVIDER) as client:
        creator = await register(client, "creator")
        page = await studio(client, creator)
        assert 'id="payee" data-state="none"' in page
        assert 'id="payee-onboard"' in page
        assert "Set up payouts" in page
        await onboard(client, creator, "more_documents")
        page = await studio(client, creator)
        assert 'data-state="restricted"' in page
        assert "<code>individual.verification.additional_document</code>" in page
        assert "Continue at the payout provider" in page
        assert "Continuar con el proveedor de pagos" in await studio(client, creator, "es")
        assert "المتابعة لدى مزوّد الدفعات" in await studio(client, creator, "ar")
        await onboard(client, creator, "approve")
        page = await studio(client, creator)
        assert 'data-state="verified"' in page
        assert 'id="payee-onboard"' not in page
        # The provider's own page speaks the visitor's language too.
        r = await creator.post("/v1/creators/me/payee/onboarding")
        path = urlsplit(r.json()["url"]).path
        client.cookies.clear()  # the studio's ?lang= left its choice in the jar
        client.cookies.set(SESSION_COOKIE, creator.auth["Authorization"].removeprefix("Bearer "))
        sandbox_page = await client.get(path, headers={"Accept-Language": "es"})
        client.cookies.clear()
        assert "Verifica quién cobra" in sandbox_page.text
        assert "script" not in sandbox_page.text
        assert "style=" not in sandbox_page.text


async def test_without_a_payout_provider_the_studio_shows_no_payee(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        creator = await register(client, "creator")
        assert 'id="payee"' not in await studio(client, creator)
        r = await creator.get("/v1/creators/me/payee")
        assert_problem(r, 404, "no_payout_provider")


async def test_a_payee_abroad_is_paid_in_their_currency_at_the_recorded_rate(
    economy_app: AppFactory, db_url: DatabaseUrl
) -> None:
    settings = PROVIDER | {
        "payout_currency_by_country": {"MX": "MXN"},
        "payout_fx_rate_micros": {"MXN": 17_250_000},
    }
    async with economy_app(**settings) as client:
        creator = await register(client, "creator", country="MX")
        admin = await make_admin(client)
        await earn(client, creator)
        await onboard(client, creator, "approve")
        assert (await payee(creator))["currency"] == "MXN"
        payout_id = await approved_payout(client, creator, admin)
        paid = await wait_for(creator, payout_id, "paid")
        # $2.50 at 17.25 pesos to the dollar: 43.12 pesos (the half centavo is not paid).
        assert (paid["amount_minor"], paid["currency"]) == (250, "USD")
        assert (paid["payout_amount_minor"], paid["payout_currency"]) == (4312, "MXN")
        assert paid["fx_rate_micros"] == 17_250_000
        db = app_services(client.app).db  # type: ignore[attr-defined]
        with db.connect() as conn:
            sent = conn.execute(
                select(sandbox_payout_transfers.c.amount_minor, sandbox_payout_transfers.c.currency)
            ).one()
        assert tuple(sent) == (4312, "MXN")
    ledger_ok(db_url)
