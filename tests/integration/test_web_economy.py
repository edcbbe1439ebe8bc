"""The admin console's Economy tab in a real browser: after a few gifts an admin opens it from
the console and sees the figures as charts (SVG with text alternatives), a creator's and a
stream's figures on request; Arabic is right-to-left; nothing overflows a phone; no console
errors. A creator is refused the operator's figures."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors
from liveclient import person
from playwright.async_api import expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
PHONE = {"width": 360, "height": 740}


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_economy_tab_shows_charts(bare_db_url: DatabaseUrl, tmp_path: Path) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        # Idle connections dropped before the server's 5 s keep-alive ends them: the browser
        # part is longer than that, and a request sent as the server closed its connection
        # failed once in CI (httpx.ReadError) where both sides waited exactly 5 s.
        idle = httpx.Limits(keepalive_expiry=2.0)
        async with (
            httpx.AsyncClient(base_url=base, timeout=30, limits=idle) as http,
            chromium() as browser,
        ):
            creator_id, creator_token = await person(http, "creator")
            creator = {"Authorization": f"Bearer {creator_token}"}
            r = await http.post("/v1/streams", json={"title": "Economy night"}, headers=creator)
            assert r.status_code == 201, r.text
            stream = r.json()["id"]
            gifts = (("hand_hearts", 25), ("finger_heart", 30), ("rose", 20))  # 2,500, 150, 20
            for n, (gift, count) in enumerate(gifts):
                viewer_id, token = await person(http, "viewer")
                grant = {"coins": 3000, "idempotency_key": f"econ-{n}"}
                r = await http.post(
                    f"/v1/admin/users/{viewer_id}/coins", json=grant, headers=OPERATOR
                )
                assert r.status_code == 200, r.text
                body = {"gift_id": gift, "count": count, "idempotency_key": f"e{n}"}
                r = await http.post(
                    f"/v1/streams/{stream}/gifts",
                    json=body,
                    headers={"Authorization": f"Bearer {token}"},
                )
                assert r.status_code == 201, r.text
            admin_id, _ = await person(http, "viewer")
            r = await http.patch(
                f"/v1/admin/users/{admin_id}", json={"role": "admin"}, headers=OPERATOR
            )
            assert r.status_code == 200, r.text
            admin_handle = r.json()["handle"]

            context = await browser.new_context(viewport={"width": 1280, "height": 900})
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/login?next=/admin")
            await page.fill("input[name=login]", admin_handle)
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/admin")
            await page.click(".admin-tabs a[href='/admin/economy']")
            await page.wait_for_url(f"{base}/admin/economy")
            # Coins per day, diamonds per day, Lorenz, cohorts, creator income: five charts.
            charts = page.locator("figure.chart svg[role=img]")
            await expect(charts).to_have_count(5)
            lorenz = page.locator("svg[aria-label^='Lorenz curve of spending']")
            await expect(lorenz).to_have_count(1)
            assert "Gini" in (await lorenz.get_attribute("aria-label") or "")
            await expect(page.locator("#gini")).to_have_text("0.619")  # 4,960 / (3 * 2,670)
            # The numbers behind a chart, as a table.
            await page.locator("figure.chart details summary").first.click()
            await expect(page.locator("figure.chart details table").first).to_be_visible()

            await page.fill("input[name=stream]", stream)
            await page.click("form:has(input[name=stream]) button")
            await expect(page.locator("#stream-h")).to_contain_text("Economy night")
            await page.fill("input[name=creator]", str(creator_id))
            await page.click("form:has(input[name=creator]) button")
            await expect(page.locator("#creator-h")).to_contain_text(f"#{creator_id}")
            await expect(page.locator("figure.chart svg[role=img]")).to_have_count(8)

            phone = await browser.new_context(viewport=PHONE, locale="ar")
            await phone.add_cookies(await context.cookies())
            small = await phone.new_page()
            phone_errors = collect_errors(small)
            await small.goto(f"{base}/admin/economy?lang=ar")
            await expect(small.locator("html")).to_have_attribute("dir", "rtl")
            await expect(small.locator("figure.chart svg[role=img]")).to_have_count(5)
            assert await small.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]

            r = await http.get("/v1/admin/analytics/economy", headers=creator)
            assert r.status_code == 403  # the same figures are refused to a creator's token
            assert errors == []
            assert phone_errors == []
