"""The creator studio in a real browser (Debian's Chromium): a creator logs in, goes live and
sets a goal; a viewer's gifts (sent through the API) move the dashboard, the top gifters and
the goal; the earnings page draws today's bar, downloads the CSV and takes a payout request.
On a phone nothing overflows; in Arabic the studio is right-to-left, its chart mirrored; a
viewer who opens the studio is told it is for creators. No console errors anywhere.
"""

from __future__ import annotations

import asyncio
import csv
import io
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser import chromium, collect_errors, with_level
from liveclient import person
from playwright.async_api import Browser, Page, expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
PHONE = {"width": 360, "height": 740}
DESKTOP = {"width": 1280, "height": 800}
LION, ROSE, ROSES = 29_999, 1, 3
EARNED = LION + ROSES * ROSE  # coins, and diamonds at the default rate
GOAL = 40_000
# The payout minimum is 50 USD (GIFTWAVE_PAYOUT_MIN_CENTS), 10,000 diamonds at half a cent.
PAYOUT = 10_000


async def _handle(http: httpx.AsyncClient, token: str) -> str:
    r = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 200, r.text
    return str(r.json()["handle"])


async def _log_in(browser: Browser, base: str, handle: str, **context: Any) -> Page:
    """A new browser context logged in through the login page, on /studio."""
    page = await (await browser.new_context(**context)).new_page()
    await page.goto(f"{base}/login?next=/studio")
    await page.fill("input[name=login]", handle)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/studio")
    return page


async def _send(http: httpx.AsyncClient, token: str, stream_id: str, gift: str, key: str) -> None:
    r = await http.post(
        f"/v1/streams/{stream_id}/gifts",
        json={"gift_id": gift, "count": 1, "idempotency_key": key},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text


async def _fits(page: Page) -> None:
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], f"{page.url} is {width}px wide on a phone"


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_creator_goes_live_sees_gifts_land_and_cashes_out(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            _, creator_token = await person(http, "creator")
            viewer_id, viewer_token = await person(http, "viewer")
            creator, viewer = await _handle(http, creator_token), await _handle(http, viewer_token)
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 50_000, "idempotency_key": "studio-test"},
                headers=ADMIN,
            )
            assert r.status_code == 200, r.text

            studio = await _log_in(browser, base, creator, viewport=DESKTOP)
            errors = collect_errors(studio)

            # Go live from the studio.
            await studio.fill("#go-live-form input[name=title]", "Studio night")
            await studio.click("#go-live-form button[type=submit]")
            await expect(studio.locator("#end-stream")).to_be_visible(timeout=10_000)
            await studio.wait_for_selector("body[data-connected='1']", timeout=10_000)
            stream_id = await studio.locator(".on-air").get_attribute("data-stream")
            assert stream_id is not None
            await expect(studio.locator("#viewer-link")).to_have_attribute(
                "href", f"/live/{stream_id}"
            )
            overlay = await studio.locator("#overlay-url").input_value()
            assert overlay.startswith(f"{base}/overlay/live?key="), overlay  # the creator's own
            await expect(studio.locator("#stat-shares")).to_have_text("0")

            # A coins goal.
            await studio.fill("#goal-form input[name=title]", "Lion night")
            await studio.fill("#goal-form input[name=target]", str(GOAL))
            await studio.click("#goal-form button[type=submit]")
            goal = studio.locator("#goal")
            await expect(goal.locator(".goal-title")).to_have_text("Lion night", timeout=10_000)
            await expect(goal.locator(".goal-numbers")).to_have_text(f"0 / {GOAL:,}")

            # A viewer's gifts, through the API: the dashboard follows the room.
            await _send(http, viewer_token, stream_id, "lion", "lion-1")
            for n in range(ROSES):
                await _send(http, viewer_token, stream_id, "rose", f"rose-{n}")
            for figure in ("#stream-coins", "#stream-diamonds"):
                await expect(studio.locator(figure)).to_have_attribute(
                    "data-value", str(EARNED), timeout=10_000
                )
            await expect(studio.locator("#stream-diamonds")).to_have_text(f"{EARNED:,}")
            top = studio.locator("#leaderboard li").first
            await expect(top.locator(".who")).to_have_text(with_level(viewer))
            await expect(top).to_have_attribute("data-coins", str(EARNED))
            await expect(goal.locator(".goal-numbers")).to_have_text(f"{EARNED:,} / {GOAL:,}")
            await expect(studio.locator("#stat-gpm")).to_have_text(str(1 + ROSES))
            await expect(studio.locator("#stat-viewers")).not_to_have_text("0")

            # Earnings, after a reload: the day's diamonds, today's bar, the CSV.
            await studio.goto(f"{base}/studio/earnings")
            await expect(studio.locator("#total-diamonds")).to_have_attribute(
                "data-diamonds", str(EARNED)
            )
            await expect(studio.locator("#total-diamonds")).to_have_text(f"{EARNED:,}")
            today = datetime.now(UTC).date().isoformat()
            bar = studio.locator(f"#earnings-chart rect.bar.today[data-day='{today}']")
            await expect(bar).to_have_attribute("data-diamonds", str(EARNED))
            assert await studio.locator("#earnings-chart").get_attribute("role") == "img"
            async with studio.expect_download() as download_info:
                await studio.click("#csv-link")
            download = await download_info.value
            text = await asyncio.to_thread(Path(await download.path()).read_text)
            rows = list(csv.reader(io.StringIO(text)))
            assert rows[0] == [
                "day",
                "stream_id",
                "stream_title",
                "gifts",
                "coins",
                "diamonds",
                "cash_value_usd",
            ]
            assert rows[1][:2] == [today, stream_id]

            # A payout request, listed with its status; the diamonds are set aside.
            await studio.fill("#payout-form input[name=diamonds]", str(PAYOUT))
            await studio.click("#payout-form button[type=submit]")
            row = studio.locator("#payouts tr").first
            await expect(row).to_have_attribute("data-status", "pending", timeout=10_000)
            await expect(row.locator("td").nth(1)).to_have_text(f"{PAYOUT:,}")
            await expect(row.locator("td").nth(3)).to_have_text("Waiting for review")
            await expect(studio.locator("#available-diamonds")).to_have_text(f"{EARNED - PAYOUT:,}")
            await expect(studio.locator("#pending-diamonds")).to_have_text(f"{PAYOUT:,}")

            await _on_a_phone_and_in_arabic(browser, base, creator)
            await _a_viewer_is_turned_away(browser, base, viewer)
            assert errors == []


async def _on_a_phone_and_in_arabic(browser: Browser, base: str, creator: str) -> None:
    phone = await _log_in(browser, base, creator, viewport=PHONE)
    arabic = await _log_in(browser, base, creator, viewport=DESKTOP, locale="ar")
    errors = collect_errors(phone, arabic)
    await phone.wait_for_selector("body[data-connected='1']", timeout=10_000)
    await _fits(phone)
    await phone.goto(f"{base}/studio/earnings")
    await _fits(phone)

    assert await arabic.get_attribute("html", "dir") == "rtl"
    await expect(arabic.locator("#end-stream")).to_have_text("إنهاء البث")
    await arabic.wait_for_selector("body[data-connected='1']", timeout=10_000)
    tabs = arabic.locator(".studio-tabs a")
    assert await _x(tabs.nth(0)) > await _x(tabs.nth(1))  # the tabs read right to left
    await arabic.goto(f"{base}/studio/earnings")
    # Time runs right to left: today, the period's last day, is the leftmost bar.
    chart = await arabic.locator("#earnings-chart").get_attribute("viewBox")
    assert chart is not None
    width = float(chart.split()[2])
    today_x = await arabic.locator("#earnings-chart rect.bar.today").get_attribute("x")
    assert today_x is not None
    assert float(today_x) < width / 2
    await expect(arabic.locator("#payouts tr").first.locator("td").nth(3)).to_have_text(
        "قيد المراجعة"
    )
    assert errors == []
    await phone.context.close()
    await arabic.context.close()


async def _x(locator: Any) -> float:
    box = await locator.bounding_box()
    assert box is not None
    return float(box["x"])


async def _a_viewer_is_turned_away(browser: Browser, base: str, viewer: str) -> None:
    context = await browser.new_context(viewport=DESKTOP)
    page = await context.new_page()
    errors = collect_errors(page)
    await page.goto(f"{base}/login?next=/")
    await page.fill("input[name=login]", viewer)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/")
    # The header leads a viewer to the studio too, whose page offers to make them a creator
    # (tests/integration/test_web_profiles.py takes that up).
    await expect(page.locator("header.site nav a[href='/studio']")).to_have_count(1)
    response = await page.goto(f"{base}/studio")
    assert response is not None
    assert response.status == 403
    await expect(page.locator("h1")).to_have_text("The studio is for creators")
    await expect(page.locator("#become-creator")).to_be_visible()
    await expect(page.locator("#go-live-form, #payout-form")).to_have_count(0)
    # Chromium reports the page's own 403 status in the console; nothing else may be there.
    assert errors == [
        "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    ]
    await context.close()
