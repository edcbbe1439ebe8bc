"""Sharing in a real browser: a logged-in viewer shares a live stream (copy link); a second
browser opens the link, lands on the stream with "shared by @…", signs up and sends a gift; the
sharer's reach page shows the visit, the sign-up and the gift's coins, and the stream page its
share count. No console errors."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from liveclient import go_live, person
from playwright.async_api import Page, expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

DOUGHNUT_COINS = 30


async def _sign_up(page: Page, handle: str) -> None:
    """From the page's own "Sign up" link, which brings the new user back to it."""
    back_to = page.url
    await page.click("header.site a[href^='/signup']")
    await page.fill("input[name=handle]", handle)
    await page.fill("input[name=email]", f"{handle}@web.test")
    await page.fill("input[name=password]", "a-long-password")
    await page.fill("input[name=birth_date]", "1992-04-05")
    await page.select_option("select[name=country]", "US")
    await page.click("button[type=submit]")
    await page.wait_for_url(back_to)


async def _until_credited(page: Page, coins: int) -> None:
    """The gift is credited in the gift's own request, just after the room heard of it: a
    reach page read in between may show it a moment later."""
    for _ in range(20):
        if str(coins) in await page.locator("#last-coins").inner_text():
            return
        await page.wait_for_timeout(250)
        await page.reload()


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_shared_link_brings_a_viewer_who_signs_up_and_gifts(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            _, token = await person(http, "creator")
            stream_id = await go_live(http, token, "Shared night")
            sharer_ctx = await browser.new_context(
                viewport={"width": 1280, "height": 800},
                permissions=["clipboard-read", "clipboard-write"],
            )
            friend_ctx = await browser.new_context(viewport={"width": 360, "height": 740})
            sharer, friend = await sharer_ctx.new_page(), await friend_ctx.new_page()
            errors = collect_errors(sharer, friend)

            # The sharer: Share, then "Copy link": their own short link, on the clipboard.
            await sharer.goto(f"{base}/live/{stream_id}")
            await _sign_up(sharer, "sharefan")
            await sharer.click("#share-open")
            await expect(sharer.locator("#share-panel")).to_be_visible()
            await sharer.click("#share-panel [data-channel='copy']")
            link = sharer.locator("#share-url")
            short = re.compile(rf"^{re.escape(base)}/s/[A-Za-z0-9_\-]{{8}}$")
            await expect(link).to_have_value(short, timeout=10_000)
            url = await link.input_value()
            assert await sharer.evaluate("navigator.clipboard.readText()") == url
            await screenshot(sharer, "share-panel")

            # The friend opens it on a phone: the stream, credited to the sharer.
            await friend.goto(url)
            await friend.wait_for_url(f"{base}/live/{stream_id}?via=*")
            await expect(friend.locator("#shared-by")).to_contain_text("@sharefan")
            await _sign_up(friend, "friendly")
            await friend.wait_for_selector("body[data-connected='1']", timeout=10_000)
            me = await friend.evaluate("fetch('/v1/me').then(r => r.json())")
            granted = await http.post(
                f"/v1/admin/users/{me['id']}/coins",
                json={"coins": 100, "idempotency_key": "friend-coins"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert granted.status_code == 200, granted.text
            await friend.reload()
            await friend.wait_for_selector("body[data-connected='1']", timeout=10_000)
            await expect(friend.locator("#balance")).to_have_attribute("data-balance", "100")
            await friend.locator("#gift-open").click()  # on a phone the tray is a sheet
            await friend.locator(".gift-button[data-gift='doughnut']").click()
            await expect(friend.locator("#balance")).to_have_attribute(
                "data-balance", str(100 - DOUGHNUT_COINS), timeout=10_000
            )

            # The balance drops at once; the receipt comes when the gift is committed.
            top = friend.locator("#leaderboard li").first
            await expect(top).to_have_attribute("data-coins", str(DOUGHNUT_COINS), timeout=10_000)

            # The sharer's reach (the link in the header): one visit, one sign-up, the coins.
            await sharer.click("header.site a[href='/me/reach']")
            await _until_credited(sharer, DOUGHNUT_COINS)
            await expect(sharer.locator("#reach-visits")).to_have_text("1")
            await expect(sharer.locator("#last-signups")).to_have_text("1")
            await expect(sharer.locator("#first-joins")).to_have_text("1")
            await expect(sharer.locator("#last-coins")).to_contain_text(str(DOUGHNUT_COINS))
            await expect(sharer.locator("#first-coins")).to_contain_text(str(DOUGHNUT_COINS))
            await screenshot(sharer, "reach")

            # The stream shows its share count, here and on Discover.
            await sharer.goto(f"{base}/live/{stream_id}")
            await expect(sharer.locator("#share-count")).to_have_text("1 share")
            await expect(sharer.locator("#share-recent")).to_have_text(
                "1 person shared this in the last hour"
            )
            await sharer.goto(f"{base}/")
            await expect(sharer.locator(".card-shares")).to_have_text(
                "1 person shared this in the last hour"
            )
            assert errors == []
