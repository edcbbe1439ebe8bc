"""Subscribing on the pages, in Debian's Chromium against a real server, in English, Spanish
and Arabic (right to left): a viewer opens a creator's profile, subscribes (the coins go, the
profile says for how long), then cancels (access stays to the end of the period, and Subscribe
resumes it); the creator's API lists them. No console errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import chromium, collect_errors, log_in
from liveclient import named_person
from playwright.async_api import expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
PRICE = 300
SUBSCRIBED = {"en": "Subscribed for", "es": "Suscrito desde hace", "ar": "مشترك منذ"}
NOT_RENEWING = {"en": "It will not renew.", "es": "No se renovará.", "ar": "لن يتجدد."}
pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("web-subs")) as proc:
        yield proc


async def test_a_viewer_subscribes_and_cancels_on_the_profile(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        creator_id, creator_token, creator = await named_person(http, "creator")
        r = await http.put(
            "/v1/me/subscription-price",
            json={"price_coins": PRICE},
            headers={"Authorization": f"Bearer {creator_token}"},
        )
        assert r.status_code == 200, r.text
        for locale in ("en", "es", "ar"):
            fan_id, fan_token, fan = await named_person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{fan_id}/coins",
                json={"coins": 1_000, "idempotency_key": f"grant-{fan_id}"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 200, r.text
            page = await log_in(browser, base, fan, PASSWORD, f"/@{creator}", locale=locale)
            errors = collect_errors(page)
            assert await page.get_attribute("html", "dir") == ("rtl" if locale == "ar" else "ltr")
            await page.click("#subscribe")
            status = page.locator("#subscribe-status")
            await expect(status).to_contain_text(SUBSCRIBED[locale], timeout=10_000)
            wallet = await http.get(
                "/v1/me/wallet", headers={"Authorization": f"Bearer {fan_token}"}
            )
            assert wallet.json()["coins"] == 1_000 - PRICE
            await page.click("#unsubscribe")
            await expect(status).to_contain_text(NOT_RENEWING[locale], timeout=10_000)
            await expect(page.locator("#unsubscribe")).to_have_count(0)
            await expect(page.locator("#subscribe")).to_be_visible()  # resumes, no charge
            assert errors == []
            await page.context.close()
        r = await http.get(
            "/v1/me/subscribers", headers={"Authorization": f"Bearer {creator_token}"}
        )
        assert r.json()["total"] == 3
        assert r.json()["revenue_coins_30d"] == 3 * PRICE
        assert creator_id == r.json()["subscribers"][0]["creator_id"]
