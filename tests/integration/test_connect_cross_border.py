"""Creators in another country than the platform's, at Stripe's boundary (the local Connect stub
of test_stripe_connect.py, the official SDK): Stripe pays a cross-border account only under the
``recipient`` service agreement and only between the regions of its self-serve cross-border
payouts, so onboarding opens such an account with that agreement (and the country passed),
and refuses a country Stripe cannot pay, before any account is made, with a problem+json
``cross_border_unsupported``. On SQLite and PostgreSQL through the API.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from economy_client import assert_problem, register
from stripe_stub import StripeStub
from test_economy_payouts import ledger_ok
from test_stripe_connect import (
    FakeConnect,
    approve,
    bank_event,
    connect_app,
    deliver,
    earn,
    event,
    fake,
    payout_of,
    provider,
    stub,
)

from giftwave.db.urls import DatabaseUrl
from giftwave.economy.payees import NO_ACCOUNT
from giftwave.payments.payout_base import CrossBorderUnsupported
from giftwave.payments.stripe_connect import StripeConnectProvider, service_agreement_for

__all__ = ["connect_app", "fake", "provider", "stub"]

ABROAD = {
    "payout_currency_by_country": {"DE": "EUR", "MX": "MXN"},
    "payout_fx_rate_micros": {"EUR": 920_000, "MXN": 17_250_000},
}


@pytest.mark.parametrize(
    ("platform", "country", "agreement"),
    [
        ("US", "US", None),  # at home: Stripe's default agreement
        ("US", "DE", "recipient"),
        ("US", "CA", "recipient"),
        ("GB", "US", "recipient"),
        ("DE", "CH", "recipient"),
        ("NO", "FR", "recipient"),  # the EEA beyond the EU
    ],
)
def test_an_account_abroad_is_a_recipient_within_stripes_regions(
    platform: str, country: str, agreement: str | None
) -> None:
    assert service_agreement_for(platform, country) == agreement


@pytest.mark.parametrize(("platform", "country"), [("US", "MX"), ("US", "BR"), ("MX", "US")])
def test_a_country_stripe_cannot_pay_from_the_platforms_is_refused(
    platform: str, country: str
) -> None:
    with pytest.raises(CrossBorderUnsupported) as refused:
        service_agreement_for(platform, country)
    assert (refused.value.country, refused.value.platform_country) == (country, platform)


async def test_a_recipient_account_says_so_to_stripe(
    stub: StripeStub, provider: StripeConnectProvider
) -> None:
    await provider.create_account(9, "DE", "EUR", provider.service_agreement("DE"))
    await provider.create_account(10, "US", "USD", provider.service_agreement("US"))
    abroad, home = (r.form for r in stub.requests)
    assert abroad["tos_acceptance[service_agreement]"] == "recipient"
    assert (abroad["country"], abroad["default_currency"]) == ("DE", "eur")
    assert "card_payments" not in " ".join(abroad)  # a recipient may not ask for it
    assert not any(k.startswith("tos_acceptance") for k in home)


async def test_onboarding_abroad_opens_a_recipient_account_or_is_refused(
    connect_app: object, stub: StripeStub, fake: FakeConnect
) -> None:
    async with connect_app(**ABROAD) as client:  # type: ignore[operator]
        german = await register(client, "creator", country="DE")
        r = await german.post("/v1/creators/me/payee/onboarding")
        assert r.status_code == 200, r.text
        (made,) = [s for s in stub.requests if (s.method, s.path) == ("POST", "/v1/accounts")]
        assert made.form["tos_acceptance[service_agreement]"] == "recipient"
        payee = (await german.get("/v1/creators/me/payee")).json()
        assert (payee["country"], payee["currency"], payee["service_agreement"]) == (
            "DE",
            "EUR",
            "recipient",
        )

        mexican = await register(client, "creator", country="MX")
        for _ in range(2):  # asked again: the same answer, still nothing made
            body = assert_problem(
                await mexican.post("/v1/creators/me/payee/onboarding"),
                422,
                "cross_border_unsupported",
            )
            assert (body["country"], body["platform_country"]) == ("MX", "US")
        assert len(fake.accounts) == 1
        payee = (await mexican.get("/v1/creators/me/payee")).json()
        assert (payee["state"], payee["missing"]) == ("none", [NO_ACCOUNT])
        r = await mexican.post("/v1/payouts", {"diamonds": 500, "idempotency_key": "k"})
        assert_problem(r, 403, "payee_not_ready")

        american = await register(client, "creator")
        assert (await american.post("/v1/creators/me/payee/onboarding")).status_code == 200
        home = [s for s in stub.requests if (s.method, s.path) == ("POST", "/v1/accounts")][-1]
        assert not any(k.startswith("tos_acceptance") for k in home.form)
        payee = (await american.get("/v1/creators/me/payee")).json()
        assert payee["service_agreement"] is None


async def test_a_cross_border_payout_is_sent_in_dollars_and_received_converted(
    connect_app: object, stub: StripeStub, fake: FakeConnect, db_url: DatabaseUrl
) -> None:
    async with connect_app(**ABROAD) as client:  # type: ignore[operator]
        german = await register(client, "creator", country="DE")
        r = await german.post("/v1/creators/me/payee/onboarding")
        account_id = urlsplit(r.json()["url"]).path.split("/")[3]
        fake.verify(account_id)
        verified = event("account.updated", fake.accounts[account_id], account=account_id)
        assert (await deliver(client, verified)).status_code == 200
        await earn(client, german)
        payout_id, approved = await approve(client, german)

        # giftwave sends its own dollars, no rate of its own; Stripe converts them as they
        # land, and the bank payout is what landed, in euros.
        assert approved["status"] == "processing", approved
        assert (approved["payout_currency"], approved["payout_amount_minor"]) == ("USD", 250)
        assert approved["fx_rate_micros"] == 1_000_000
        assert (approved["received_amount_minor"], approved["received_currency"]) == (229, "EUR")
        assert approved["provider_fx_rate_micros"] == 917_300
        (transfer,) = fake.transfers.values()
        assert (transfer["amount"], transfer["currency"]) == (250, "usd")
        (bank,) = fake.payouts.values()
        assert (bank["amount"], bank["currency"]) == (229, "eur")
        read = [s for s in stub.requests if s.path.startswith("/v1/charges/")]
        assert [s.headers.get("stripe-account") for s in read] == [account_id]

        # The bank's answer moves euros: it is the payout's, not a mismatch.
        paid = bank_event(fake, "payout.paid", account_id, status="paid")
        assert (await deliver(client, paid)).status_code == 200
        payout = await payout_of(german, payout_id)
        assert (payout["status"], payout["flag"]) == ("paid", None)
        statement = (await german.get("/v1/creators/me/statement")).json()
        (listed,) = statement["payout_list"]
        assert (listed["received_amount_minor"], listed["received_currency"]) == (229, "EUR")
    ledger_ok(db_url)
