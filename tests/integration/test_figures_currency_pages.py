"""Money at each currency's own scale on the pages (issue 17, item 1), in a real browser: the
shop's package buttons and the buyer's orders, and the admin console's price preview, for
viewers paying in USD, EUR, JPY, KRW, KWD and BHD. The page scripts format with the browser's
Intl; the digits of each currency come from the server, so a price of 160 in JPY is ¥160 (the
scripts divided every amount by 100: ¥2), and 310 fils is KWD 0.310 (not KWD 3.100).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors
from playwright.async_api import Browser, Page, expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "a-long-password"
_n = itertools.count(1)

# currency: (a country that pays in it, price of 70 coins in its minor unit, as Chromium's
# Intl writes it in English; a no-break space after a code)
PRICES: dict[str, tuple[str, int, str]] = {
    "USD": ("US", 99, "$0.99"),
    "EUR": ("DE", 129, "€1.29"),
    "JPY": ("JP", 160, "¥160"),
    "KRW": ("KR", 1_400, "₩1,400"),
    "KWD": ("KW", 310, "KWD\xa00.310"),
    "BHD": ("BH", 380, "BHD\xa00.380"),
}


async def _person(http: httpx.AsyncClient, country: str) -> tuple[str, int, dict[str, str]]:
    handle = f"payer{next(_n)}{country.lower()}"
    r = await http.post(
        "/v1/auth/register",
        json={
            "handle": handle,
            "email": f"{handle}@figures.test",
            "password": PASSWORD,
            "birth_date": "1990-01-01",
            "country": country,
            "role": "viewer",
        },
    )
    assert r.status_code == 201, r.text
    body = r.json()
    return handle, int(body["user"]["id"]), {"Authorization": f"Bearer {body['token']}"}


async def _logged_in(browser: Browser, base: str, handle: str, target: str) -> Page:
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    page = await context.new_page()
    await page.goto(f"{base}/login?next={target}")
    await page.fill("input[name=login]", handle)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{target}")
    return page


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_pages_show_each_currency_at_its_own_scale(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            for currency, (_, price, _) in PRICES.items():
                body = {"currency": currency, "coins": 70, "price_minor": price}
                r = await http.put("/v1/admin/coin-packages", json=body, headers=OPERATOR)
                assert r.status_code == 200, r.text

            errors = collect_errors()  # each page joins it as it opens
            for currency, (country, price, shown) in PRICES.items():
                handle, _, auth = await _person(http, country)
                packages = (await http.get(f"/v1/coin-packages?currency={currency}")).json()
                package = next(p for p in packages if p["coins"] == 70)
                order = {"package_id": package["id"], "currency": currency, "idempotency_key": "k1"}
                r = await http.post("/v1/topups", json=order, headers=auth)
                assert r.status_code == 201, r.text
                assert r.json()["amount_minor"] == price

                page = await _logged_in(browser, base, handle, "/shop")
                errors.watch(page)
                button = page.locator("#packages li.package[data-coins='70'] button")
                await expect(button).to_have_text(shown)
                # The purchase just started, in the buyer's list: the same amount.
                row = page.locator(f"#orders tr[data-order='{r.json()['id']}'] td").nth(2)
                await expect(row).to_have_text(shown)
                await page.context.close()

            # The operator's console previews each price as buyers will see it.
            handle, admin_id, _ = await _person(http, "US")
            r = await http.patch(
                f"/v1/admin/users/{admin_id}", json={"role": "admin"}, headers=OPERATOR
            )
            assert r.status_code == 200, r.text
            page = await _logged_in(browser, base, handle, "/admin")
            errors.watch(page)
            await page.goto(f"{base}/admin#catalogue")
            for currency, (_, _, shown) in PRICES.items():
                row = page.locator(
                    f"#package-table tr[data-currency='{currency}'][data-coins='70']"
                )
                await expect(row.locator("small.muted")).to_have_text(shown)
            assert errors == []
