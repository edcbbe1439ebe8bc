"""Payouts through the sandbox payout provider in a real browser (Debian's Chromium): a creator
who earned diamonds opens the studio's earnings, sets up the payout account at the sandbox's
onboarding page, comes back verified, requests a payout that an admin approves, and sees it
paid. No console errors anywhere."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors
from liveclient import go_live, person
from playwright.async_api import expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
PAYOUT = 1_000  # diamonds: $5 at half a cent, the minimum set below


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_creator_onboards_at_the_sandbox_and_is_paid(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(
        bare_db_url,
        tmp_path,
        GIFTWAVE_PAYOUT_PROVIDER="sandbox",
        GIFTWAVE_PAYOUT_MIN_CENTS="500",
    ) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            _, creator_token = await person(http, "creator")
            viewer_id, viewer_token = await person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": PAYOUT, "idempotency_key": "payee-test"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text
            stream_id = await go_live(http, creator_token, "Payday")
            r = await http.post(
                f"/v1/streams/{stream_id}/gifts",
                json={"gift_id": "money_gun", "count": 2, "idempotency_key": "g"},  # 1,000
                headers={"Authorization": f"Bearer {viewer_token}"},
            )
            assert r.status_code == 201, r.text
            me = await http.get("/v1/me", headers={"Authorization": f"Bearer {creator_token}"})

            page = await (await browser.new_context()).new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/login?next=/studio/earnings")
            await page.fill("input[name=login]", me.json()["handle"])
            await page.fill("input[name=password]", PASSWORD)
            await page.click("button[type=submit]")
            await page.wait_for_url(f"{base}/studio/earnings")
            await expect(page.locator("#payee")).to_have_attribute("data-state", "none")

            # Onboarding at the provider's own page, and back.
            await page.click("#payee-onboard")
            await page.wait_for_url(f"{base}/sandbox/onboarding/**")
            await page.select_option("select[name=bank]", "pays")
            await page.click("form[action$='/approve'] button")
            await expect(page.locator("#payouts-enabled")).to_have_text("Yes")
            await page.click("a.back")
            await page.wait_for_url(f"{base}/studio/earnings")
            await expect(page.locator("#payee")).to_have_attribute("data-state", "verified")
            await expect(page.locator("#payee-onboard")).to_have_count(0)

            # A payout, approved by an admin, paid by the provider's webhook.
            await page.fill("#payout-form input[name=diamonds]", str(PAYOUT))
            await page.click("#payout-form button[type=submit]")
            row = page.locator("#payouts tr").first
            await expect(row).to_have_attribute("data-status", "pending", timeout=10_000)
            payout_id = await row.get_attribute("data-id")
            r = await http.post(f"/v1/admin/payouts/{payout_id}/approve", headers=ADMIN)
            assert r.status_code == 200, r.text
            await page.reload()
            await expect(row).to_have_attribute("data-status", "paid", timeout=10_000)
            await expect(row.locator("td").nth(3)).to_have_text("Paid")
            # What was sent and the provider's reference for it.
            creator = {"Authorization": f"Bearer {creator_token}"}
            mine = (await http.get(f"/v1/payouts/{payout_id}", headers=creator)).json()
            sent = f"${mine['payout_amount_minor'] / 100:,.2f}"
            await expect(row.locator("td").nth(4)).to_have_text(sent)
            await expect(row.locator("td.reference")).to_have_text(mine["provider_transfer_id"])
            assert errors == []
