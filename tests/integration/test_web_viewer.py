"""The viewer's pages in a real browser (Debian's Chromium): sign up, buy coins at the sandbox
checkout, send a Rose combo and a Lion from the gift tray; a second browser on the same stream
sees the animation, the combo counter reach the right number and the leaderboard update. In
Arabic the page is right-to-left and mirrored; on a phone nothing overflows; no console errors.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, screenshot, with_level
from liveclient import person
from playwright.async_api import Browser, Page, expect
from serverproc import ADMIN_TOKEN, one_server

from giftwave.db.urls import DatabaseUrl

ROSES = 7
LION = 29_999
BOUGHT = 30_100
PHONE = {"width": 360, "height": 740}


async def _sign_up(page: Page, base: str, handle: str) -> None:
    await page.goto(f"{base}/signup?next=/shop")
    await page.fill("input[name=handle]", handle)
    await page.fill("input[name=email]", f"{handle}@web.test")
    await page.fill("input[name=password]", "a-long-password")
    await page.fill("input[name=birth_date]", "1992-04-05")
    await page.select_option("select[name=country]", "US")
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/shop")


async def _buy_coins(page: Page, coins: int) -> None:
    """The shop's custom amount, paid at the sandbox provider's checkout page."""
    await page.fill("#custom input[name=coins]", str(coins))
    await page.click("#custom button[type=submit]")
    await page.wait_for_url("**/sandbox/checkout/**")
    await page.click("form[action$='/pay'] button")
    await page.click("a.back")  # back to the shop, which follows the order to "paid"
    await expect(page.locator("#order-status[data-state='paid']")).to_be_visible(timeout=15_000)
    await expect(page.locator("#balance")).to_have_attribute("data-balance", str(coins))


async def _stream(http: httpx.AsyncClient) -> tuple[str, str]:
    _, token = await person(http, "creator")
    creator = {"Authorization": f"Bearer {token}"}
    r = await http.post("/v1/streams", json={"title": "Web night"}, headers=creator)
    assert r.status_code == 201, r.text
    return str(r.json()["id"]), token


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_viewer_buys_coins_and_gifts_and_another_viewer_sees_it(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            stream_id, creator_token = await _stream(http)
            creator = {"Authorization": f"Bearer {creator_token}"}
            gifter = await browser.new_context(viewport={"width": 1280, "height": 800})
            watcher = await browser.new_context(viewport=PHONE)
            page = await gifter.new_page()
            other = await watcher.new_page()
            # Two lists, each filled by its page's events (a sum would be a new list, filled by
            # nothing).
            page_errors, other_errors = collect_errors(page), collect_errors(other)

            await _sign_up(page, base, "webfan")
            await _buy_coins(page, BOUGHT)

            await other.goto(f"{base}/live/{stream_id}")
            await page.goto(f"{base}/live/{stream_id}")
            for p in (page, other):
                await p.wait_for_selector("body[data-connected='1']", timeout=10_000)

            # The combo: clicks, and the last Rose by keyboard (a focused gift sends on Enter),
            # inside the combo's quiet time: a key press later would start a new combo.
            rose = page.locator(".gift-button[data-gift='rose']")
            for _ in range(ROSES - 1):
                await rose.click()
            await rose.focus()
            await page.keyboard.press("Enter")
            await page.locator(".gift-button[data-gift='lion']").click()
            await page.locator("#gift-confirm button.send").click()  # an expensive gift asks

            # The other viewer: the combo counter reaches x7, the Lion takes the stage, the
            # board ranks the gifter with every coin.
            combo = other.locator("#lane li.alert[data-gift='rose']")
            await expect(combo).to_have_attribute("data-count", str(ROSES), timeout=10_000)
            await expect(combo.locator(".count")).to_have_text(f"x{ROSES}")
            await expect(other.locator(".fx-gift.tier-5[data-gift='lion']")).to_be_attached(
                timeout=10_000
            )
            top = other.locator("#leaderboard li").first
            await expect(top.locator(".who")).to_have_text(with_level("webfan"), timeout=10_000)
            await expect(top).to_have_attribute("data-coins", str(ROSES + LION))
            await expect(page.locator("#balance")).to_have_attribute(
                "data-balance", str(BOUGHT - ROSES - LION), timeout=10_000
            )
            wallet = await page.evaluate("fetch('/v1/me/wallet').then(r => r.json())")
            assert wallet["coins"] == BOUGHT - ROSES - LION

            # Not enough coins for a second Lion: refused at once, told, nothing charged.
            await page.locator(".gift-button[data-gift='lion']").click()
            await expect(page.locator(".toast.error a[href='/shop']")).to_be_visible()

            # Chat and likes reach the other viewer.
            await page.fill("#chat-text", "hola desde la web")
            await page.press("#chat-text", "Enter")
            await expect(other.locator("#chat-log li .text")).to_have_text(["hola desde la web"])
            await page.click("#like")
            await expect(other.locator("#likes")).to_have_text("1", timeout=10_000)

            # The phone-sized viewer: nothing wider than the screen.
            width = await other.evaluate("document.documentElement.scrollWidth")
            assert width <= PHONE["width"]

            await screenshot(other, "viewer-phone")  # the room, before the tray's sheet opens

            # An anonymous viewer who taps a gift (in the phone's sheet) is asked to log in.
            await other.locator("#gift-open").click()
            await other.locator(".gift-button[data-gift='rose']").click()
            await expect(other.locator(".toast a[href^='/login']")).to_be_visible()
            await screenshot(page, "viewer-desktop")

            # The stream ends while they watch: both are told, and the tray stops sending.
            r = await http.post(f"/v1/streams/{stream_id}/end", headers=creator)
            assert r.status_code == 200, r.text
            for p in (page, other):
                await expect(p.locator(".ended-notice")).to_be_visible(timeout=10_000)
                await expect(p.locator(".gift-button[data-gift='rose']")).to_be_disabled()
            assert page_errors == []
            assert other_errors == []
            await gifter.close()
            await watcher.close()


async def _x(page: Page, selector: str) -> float:
    box = await page.locator(selector).bounding_box()
    assert box is not None, selector
    return float(box["x"])


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_arabic_pages_are_right_to_left_and_mirrored(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with one_server(bare_db_url, tmp_path) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            stream_id, _ = await _stream(http)
            async with chromium() as browser:
                await _check_mirrored(browser, f"{server.base_url}/live/{stream_id}")


async def _check_mirrored(browser: Browser, url: str) -> None:
    english = await browser.new_context(viewport={"width": 1280, "height": 800})
    arabic = await browser.new_context(viewport={"width": 1280, "height": 800}, locale="ar")
    en, ar = await english.new_page(), await arabic.new_page()
    en_errors, ar_errors = collect_errors(en), collect_errors(ar)
    await en.goto(url)
    await ar.goto(url)  # chosen from the browser's Accept-Language
    assert await ar.get_attribute("html", "dir") == "rtl"
    assert await ar.get_attribute("html", "lang") == "ar"
    assert await en.get_attribute("html", "dir") == "ltr"
    await expect(ar.locator("#chat-h")).to_have_text("الدردشة")
    await expect(ar.locator(".gift-button[data-gift='rose'] .gift-name")).to_have_text("وردة")

    first, second = ".gift-button >> nth=0", ".gift-button >> nth=1"
    # The tray runs left to right in English, right to left in Arabic.
    assert await _x(en, first) < await _x(en, second)
    assert await _x(ar, first) > await _x(ar, second)
    # The side panel (board, chat) is on the right in English, on the left in Arabic; in the
    # chat form the send button follows the text box in reading order.
    assert await _x(en, "aside.side") > await _x(en, ".stage")
    assert await _x(ar, "aside.side") < await _x(ar, ".stage")
    assert await _x(ar, "#chat-form button") < await _x(ar, "#chat-text")
    assert await _x(en, "#chat-form button") > await _x(en, "#chat-text")
    await screenshot(ar, "viewer-arabic")

    # ?lang= switches and is remembered.
    await en.goto(url + "?lang=es")
    await expect(en.locator("#chat-h")).to_have_text("Chat")
    await en.goto(url)
    assert await en.get_attribute("html", "lang") == "es"
    await asyncio.sleep(0)
    assert en_errors == []
    assert ar_errors == []
    await english.close()
    await arabic.close()


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_gift_panel_works_inside_another_sites_iframe(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    """An Owncast external action: giftwave's panel in a cross-site iframe, where the browser
    keeps no giftwave cookie. The panel logs in itself and its gifts land in the room."""
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        # A page the test fulfils has no address, so Chromium would count it as public and
        # refuse it a frame from 127.0.0.1 (Local Network Access); a real host page is a site.
        lna_off = "--disable-features=LocalNetworkAccessChecks"
        async with (
            httpx.AsyncClient(base_url=base, timeout=30) as http,
            chromium(lna_off) as browser,
        ):
            stream_id, _ = await _stream(http)
            fan_id, fan_token = await person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{fan_id}/coins",
                json={"coins": 50, "idempotency_key": "embed"},
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
            )
            assert r.status_code == 200, r.text
            fan = {"Authorization": f"Bearer {fan_token}"}
            handle = (await http.get("/v1/me", headers=fan)).json()["handle"]
            embed = await http.get(f"/embed/{stream_id}")
            assert embed.headers["content-security-policy"].endswith(
                "; frame-ancestors http: https:"
            )
            live = await http.get(f"/live/{stream_id}")  # may spend coins: never framed
            assert live.headers["content-security-policy"].endswith("; frame-ancestors 'none'")

            page = await browser.new_page(viewport={"width": 800, "height": 700})
            errors = collect_errors(page)
            # The host page is another site (localhost, not 127.0.0.1): the frame is third-party.
            # Played by the browser itself: giftwave's own pages would not frame another site.
            host_page = base.replace("127.0.0.1", "localhost") + "/owncast"
            await page.route(
                host_page,
                lambda route: route.fulfill(
                    content_type="text/html",
                    body=f'<iframe id="panel" src="{base}/embed/{stream_id}" width=420 '
                    "height=600></iframe>",
                ),
            )
            await page.goto(host_page)
            frame = page.frame_locator("#panel")
            await frame.locator("body[data-connected='1']").wait_for(timeout=10_000)
            await frame.locator(".gift-button[data-gift='rose']").click()  # asks to log in
            await frame.locator("#embed-login input[name=login]").fill(handle)
            await frame.locator("#embed-login input[name=password]").fill("pw-pw-pw-pw")
            await frame.locator("#embed-login button[type=submit]").click()
            await expect(frame.locator("#balance")).to_have_attribute(
                "data-balance", "50", timeout=10_000
            )
            await frame.locator("body[data-connected='1']").wait_for(timeout=10_000)
            for _ in range(3):
                await frame.locator(".gift-button[data-gift='rose']").click()
            await expect(frame.locator("#lane li.alert[data-gift='rose']")).to_have_attribute(
                "data-count", "3", timeout=10_000
            )
            await expect(frame.locator("#balance")).to_have_attribute("data-balance", "47")
            wallet = await http.get("/v1/me/wallet", headers=fan)
            assert wallet.json()["coins"] == 47
            assert errors == []
