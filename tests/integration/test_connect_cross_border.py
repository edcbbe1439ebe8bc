"""Creators in another country than the platform's, at Stripe's boundary (the local Connect stub
of test_stripe_connect.py, the official SDK): Stripe pays a cross-border account only under the
``recipient`` service agreement and only between the regions of its self-serve cross-border
payouts, so onboarding opens such an account with that agreement (and the country passed),
and refuses a country Stripe cannot pay, before any account is made, with a problem+json
``cross_border_unsupported``. On SQLite and PostgreSQL through the API.
"""

from __future__ import annotations

import pytest
from economy_client import assert_problem, register
from stripe_stub import StripeStub
from test_stripe_connect import FakeConnect, connect_app, fake, provider, stub

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
