"""Issue 24's "done" for viewers, in a real browser (Debian's Chromium) on a real server: a
viewer lowers their own daily limit on the spending page, is stopped by it in the middle of a
Rose combo with a clear message (the room's WebSocket answer), then tries to raise it and sees
the cooling-off; a second raise meanwhile is refused in words. SQLite: the storage rules are
tested on both databases in test_spending_limits.py.
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from liveclient import go_live, named_person
from playwright.async_api import Page, expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
COINS = 1_000
DAY_LIMIT = 3


async def _save_day_limit(page: Page, coins: int) -> None:
    await page.fill("#limit-day", str(coins))
    async with page.expect_navigation():
        await page.click("#limits-form button[type=submit]")


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_viewer_lowers_a_limit_is_stopped_mid_combo_and_a_raise_waits(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            _, creator_token, _ = await named_person(http, "creator")
            stream_id = await go_live(http, creator_token, "Limits")
            viewer_id, _, handle = await named_person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": COINS, "idempotency_key": "limits-grant"},
                headers=OPERATOR,
            )
            assert r.status_code == 200, r.text

        async with chromium() as browser:
            context = await browser.new_context(viewport={"width": 1366, "height": 768})
            r2 = await context.request.post(
                f"{base}/v1/auth/login", data={"login": handle, "password": PASSWORD}
            )
            assert r2.ok, await r2.text()
            page = await context.new_page()
            errors = collect_errors(page)

            # Lower: the day's limit, at once.
            await page.goto(f"{base}/me/spending")
            await _save_day_limit(page, DAY_LIMIT)
            await expect(page.locator("#limit-day")).to_have_value(str(DAY_LIMIT))
            await expect(page.locator("#pending-day")).to_have_count(0)

            # Mid-combo: three Roses go, the fourth is stopped with the limit named.
            await page.goto(f"{base}/live/{stream_id}")
            await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
            rose = page.locator(".gift-button[data-gift='rose']")
            for _ in range(DAY_LIMIT):
                await rose.click()
            await expect(page.locator("#lane li.alert[data-gift='rose']")).to_have_attribute(
                "data-count", str(DAY_LIMIT), timeout=10_000
            )
            await rose.click()
            refusal = page.locator(".toast.error", has_text="your own spending limit")
            await expect(refusal).to_contain_text(f"of {DAY_LIMIT} coins", timeout=10_000)
            await expect(refusal).to_contain_text("resets at")
            await screenshot(page, "spending-limit-mid-combo")
            await expect(page.locator("#balance")).to_have_attribute(
                "data-balance", str(COINS - DAY_LIMIT)
            )

            # Raise: it waits out the cooling-off, and the page says until when.
            await page.goto(f"{base}/me/spending")
            await _save_day_limit(page, 50)
            pending = page.locator("#pending-day")
            await expect(pending).to_contain_text("Raise to 50 coins from")
            await expect(pending).to_contain_text("cooling-off")
            await expect(page.locator("#limit-day")).to_have_value(str(DAY_LIMIT))
            await screenshot(page, "spending-limit-cooling-off")

            # Another raise inside the window: refused in words, the clock not reset.
            await page.fill("#limit-day", "80")
            await page.click("#limits-form button[type=submit]")
            await expect(page.locator("#limits-form .form-error")).to_contain_text(
                "already waiting out its cooling-off"
            )
            assert errors == [] or all("409" in e for e in errors), errors
