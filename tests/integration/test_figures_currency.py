"""Money at each currency's own scale (issue 17, item 1), through the API on SQLite and
PostgreSQL: the shop's prices, the sandbox checkout page, custom amounts, and what crosses the
Stripe boundary both ways (the real SDK against the local stub of test_stripe_provider.py).

The expected figures are written out by hand from ISO 4217 and Stripe's currency rules, never
computed with giftwave's own money module: 160 JPY is ¥160 (not ¥2), 310 fils is KWD 0.310
(not KWD 3.100), ISK travels to Stripe with two extra zeros.
"""

from __future__ import annotations

import copy
import hashlib
import itertools
import json
from collections.abc import Iterator
from typing import Any

import pytest
from economy_client import (
    ADMIN,
    AppFactory,
    Person,
    assert_problem,
    economy_app,
    make_app_factory,
    register,
    sandbox,
)
from test_stripe_provider import API_KEY, SECRET, StripeStub, checkout_route, deliver, recorded

from giftwave.db.urls import DatabaseUrl

__all__ = ["economy_app"]

# currency: (a country that pays in it, price of 70 coins in its minor unit, the API's text)
PRICES: dict[str, tuple[str, int, str]] = {
    "USD": ("US", 99, "$0.99"),
    "EUR": ("DE", 129, "€1.29"),
    "JPY": ("JP", 160, "¥160"),
    "KRW": ("KR", 1_400, "₩1,400"),
    "KWD": ("KW", 310, "KWD0.310"),
    "BHD": ("BH", 380, "BHD0.380"),
}


async def put_package(client: Any, currency: str, price_minor: int, coins: int = 70) -> Any:
    body = {"currency": currency, "coins": coins, "price_minor": price_minor}
    return await client.put("/v1/admin/coin-packages", json=body, headers=ADMIN)


async def package_of(client: Any, currency: str, coins: int = 70) -> dict[str, Any]:
    r = await client.get("/v1/coin-packages", params={"currency": currency})
    assert r.status_code == 200, r.text
    found: dict[str, Any] = next(p for p in r.json() if p["coins"] == coins)
    return found


_keys = itertools.count(1)


async def order(viewer: Person, currency: str, **body: Any) -> dict[str, Any]:
    r = await viewer.post(
        "/v1/topups", {"currency": currency, "idempotency_key": f"o-{next(_keys)}", **body}
    )
    assert r.status_code == 201, r.text
    placed: dict[str, Any] = r.json()
    return placed


async def test_prices_and_the_sandbox_checkout_at_each_currencys_scale(
    economy_app: AppFactory,
) -> None:
    async with economy_app() as client:
        for currency, (_, price, _) in PRICES.items():
            r = await put_package(client, currency, price)
            assert r.status_code == 200, r.text
        for currency, (country, price, shown) in PRICES.items():
            package = await package_of(client, currency)
            assert (package["price_minor"], package["price"]) == (price, shown), currency
            assert package["currency_exponent"] == {"JPY": 0, "KRW": 0, "KWD": 3, "BHD": 3}.get(
                currency, 2
            )

            viewer = await register(client, country=country)
            placed = await order(viewer, currency, package_id=package["id"])
            assert (placed["amount_minor"], placed["currency"]) == (price, currency)
            session = placed["checkout_url"].rsplit("/", 1)[1]
            page = await client.get(f"/sandbox/checkout/{session}")
            assert page.status_code == 200, page.text
            assert f"<dd>{shown}</dd>" in page.text, currency
            assert f"Pay {shown}</button>" in page.text, currency
            await sandbox(client, placed, "pay")
            assert await viewer.coins() == 70
            r = await viewer.get(f"/v1/topups/{placed['id']}")
            assert (r.json()["status"], r.json()["amount_minor"]) == ("paid", price)

        # A custom amount is the dearest package's rate, rounded up to what the currency
        # can be charged in: a yen, a cent, ten fils (Stripe clears KWD in steps of 0.010).
        buyer = await register(client, country="KW")
        for currency, coins, expected in (
            ("JPY", 100, 229),  # 160 * 100 / 70 = 228.57
            ("USD", 100, 143),  # 24,999 * 100 / 17,500 = 142.85 (the dearest per coin)
            ("KWD", 100, 450),  # 310 * 100 / 70 = 442.86 → 443 fils → 450
            ("BHD", 1000, 5430),  # 380 * 1000 / 70 = 5,428.57 → 5,429 fils → 5,430
        ):
            placed = await order(buyer, currency, coins=coins)
            assert placed["amount_minor"] == expected, currency

        # Prices a currency cannot be charged in are refused, and nothing is written.
        before = (await client.get("/v1/admin/coin-packages", headers=ADMIN)).json()
        assert_problem(await put_package(client, "KWD", 305), 422, "price_not_chargeable")
        assert_problem(await put_package(client, "BHD", 1, coins=7), 422, "price_not_chargeable")
        assert_problem(await put_package(client, "XQZ", 100), 422, "invalid_currency")
        after = (await client.get("/v1/admin/coin-packages", headers=ADMIN)).json()
        assert after == before


# --- the Stripe boundary ---------------------------------------------------------------------

# currency: (price of 70 coins in giftwave's minor unit, Stripe's unit_amount for it)
STRIPE_AMOUNTS: dict[str, tuple[int, int]] = {
    "USD": (99, 99),
    "EUR": (129, 129),
    "JPY": (160, 160),  # zero-decimal at Stripe: the yen itself
    "KRW": (1_400, 1_400),
    "KWD": (310, 310),  # three-decimal at Stripe, the last digit 0
    "BHD": (380, 380),
    "ISK": (140, 14_000),  # whole krónur in giftwave; Stripe wants two decimals (times 100)
    "HUF": (350, 35_000),  # whole forints in giftwave (CLDR); two decimals at Stripe
}


@pytest.fixture
def stub() -> Iterator[StripeStub]:
    with StripeStub(checkout_route) as running:
        yield running


def stripe_event(name: str, placed: dict[str, Any], pi: str, amount: int) -> bytes:
    """A recorded event about ``placed``, its amounts in Stripe's unit."""
    event = copy.deepcopy(recorded(name))
    event["id"] = (
        "evt_1Qx" + hashlib.sha256(f"{name}:{placed['id']}:{amount}".encode()).hexdigest()[:24]
    )
    obj = event["data"]["object"]
    obj["payment_intent"] = pi
    obj["metadata"]["order_id"] = placed["id"]
    obj["currency"] = placed["currency"].lower()
    if obj["object"] == "checkout.session":
        obj["client_reference_id"] = placed["id"]
        obj["amount_total"] = obj["amount_subtotal"] = amount
    else:
        obj["amount"] = obj["amount_captured"] = amount
        obj["amount_refunded"] = amount // 2
    return json.dumps(event).encode()


async def test_stripe_gets_and_gives_amounts_in_its_own_unit(
    db_url: DatabaseUrl, stub: StripeStub
) -> None:
    stripe_app = make_app_factory(db_url)
    async with stripe_app(
        payment_provider="stripe",
        stripe_api_key=API_KEY,
        stripe_webhook_secret=SECRET,
        stripe_api_base=stub.url,
    ) as client:
        viewer = await register(client)
        for n, (currency, (price, unit_amount)) in enumerate(STRIPE_AMOUNTS.items()):
            r = await put_package(client, currency, price)
            assert r.status_code == 200, r.text
            package = await package_of(client, currency)
            placed = await order(viewer, currency, package_id=package["id"])
            sent = stub.requests[-1].form
            assert sent["line_items[0][price_data][currency]"] == currency.lower()
            assert sent["line_items[0][price_data][unit_amount]"] == str(unit_amount), currency
            assert placed["amount_minor"] == price

            # Stripe reports the payment in its unit: the order is paid, the coins arrive.
            pi = f"pi_3QxFigures{n:04d}"
            coins = await viewer.coins()
            paid = stripe_event("checkout.session.completed", placed, pi, unit_amount)
            assert (await deliver(client, paid)).status_code == 200
            assert await viewer.coins() == coins + 70, currency
            r = await viewer.get(f"/v1/topups/{placed['id']}")
            assert r.json()["status"] == "paid", currency

        # Half refunded, in Stripe's unit (7,000 = 70 ISK of 140): half the coins go back.
        isk = await order(viewer, "ISK", package_id=(await package_of(client, "ISK"))["id"])
        paid = stripe_event("checkout.session.completed", isk, "pi_3QxFiguresIsk", 14_000)
        assert (await deliver(client, paid)).status_code == 200
        coins = await viewer.coins()
        refund = stripe_event("charge.refunded", isk, "pi_3QxFiguresIsk", 14_000)
        assert (await deliver(client, refund)).status_code == 200
        assert await viewer.coins() == coins - 35
        r = await viewer.get(f"/v1/topups/{isk['id']}")
        assert r.json()["status"] == "partly_refunded"
        # An amount finer than a króna is no amount giftwave could have asked for.
        odd = stripe_event("checkout.session.completed", isk, "pi_3QxFiguresOdd", 14_050)
        assert_problem(await deliver(client, odd), 400, "malformed_webhook")

        # A custom KWD amount reaches Stripe as a multiple of ten fils.
        placed = await order(viewer, "KWD", coins=100)
        assert stub.requests[-1].form["line_items[0][price_data][unit_amount]"] == "450"
        assert placed["amount_minor"] == 450
