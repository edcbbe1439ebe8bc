"""The room's Share panel in Chromium (#18 item 17), on a desktop, a 360x740 phone and in
Arabic, against one real server:

- the panel is a popover: opening it moves nothing on the page (the gift tray keeps its place,
  no horizontal scroll), it fits the screen, Escape and a tap elsewhere close it;
- a logged-in viewer's share changes "N shares" (and "N people shared this in the last hour")
  at once, in the page's language, to the server's figures;
- an anonymous visitor copies the stream's plain address (no share link made, nobody
  credited) and is told how to get a credited link.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from liveclient import go_live, person
from playwright.async_api import Browser, BrowserContext, Page, expect
from serverproc import ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)

PASSWORD = "pw-pw-pw-pw"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}


@dataclass(frozen=True, slots=True)
class Room:
    server: ServerProcess
    stream_id: str
    viewers: tuple[str, ...]  # handles of viewers to log in as, one per test


async def _build(server: ServerProcess) -> Room:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, token = await person(http, "creator")
        stream_id = await go_live(http, token, "Share night")
        handles = []
        for _ in range(3):
            _, viewer = await person(http, "viewer")
            me = await http.get("/v1/me", headers={"Authorization": f"Bearer {viewer}"})
            handles.append(str(me.json()["handle"]))
    return Room(server, stream_id, tuple(handles))


@pytest.fixture(scope="module")
def room(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Room]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("share")) as server:
        yield asyncio.run(_build(server))


async def _context(
    browser: Browser, room: Room, viewport: dict[str, int], handle: str | None, locale: str = "en"
) -> BrowserContext:
    context = await browser.new_context(viewport=viewport, locale=locale)
    await context.grant_permissions(["clipboard-read", "clipboard-write"])
    if handle is not None:
        login = {"login": handle, "password": PASSWORD}
        r = await context.request.post(f"{room.server.base_url}/v1/auth/login", data=login)
        assert r.ok, await r.text()
    return context


async def _box(page: Page, selector: str) -> dict[str, float]:
    box = await page.locator(selector).bounding_box()
    assert box is not None, selector
    return box


async def _open_moves_nothing(page: Page, viewport: dict[str, int], name: str) -> None:
    """Open the panel: what follows it on the page stays put, nothing scrolls sideways, the
    panel is whole on the screen; then Escape closes it and gives the focus back."""
    below = "#gift-sheet" if await page.locator("#gift-sheet").is_visible() else ".side"
    before = await _box(page, below)
    await page.locator("#share-open").click()
    panel = page.locator("#share-panel")
    await expect(panel).to_be_visible()
    await expect(page.locator("#share-open")).to_have_attribute("aria-expanded", "true")
    assert await _box(page, below) == before, f"{below} moved when the panel opened"
    box = await _box(page, "#share-panel")
    assert box["x"] >= 0
    assert box["x"] + box["width"] <= viewport["width"] + 0.5
    assert box["y"] >= 0
    assert box["y"] + box["height"] <= viewport["height"] + 0.5
    assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]
    await screenshot(page, f"share-panel-{name}")
    await page.keyboard.press("Escape")
    await expect(panel).to_be_hidden()
    await expect(page.locator("#share-open")).to_be_focused()


async def test_a_share_counts_at_once_and_the_panel_moves_nothing(room: Room) -> None:
    base = room.server.base_url
    async with chromium() as browser:
        context = await _context(browser, room, DESKTOP, room.viewers[0])
        page = await context.new_page()
        errors = collect_errors(page)
        await page.goto(f"{base}/live/{room.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
        await expect(page.locator("#share-count")).to_have_text("0 shares")
        await expect(page.locator("#share-recent")).to_be_hidden()
        await _open_moves_nothing(page, DESKTOP, "desktop")

        await page.locator("#share-open").click()
        await page.locator("#share-panel [data-channel='copy']").click()
        await expect(page.locator(".toast")).to_have_text("Link copied")
        url = await page.locator("#share-url").input_value()
        assert url.startswith(f"{base}/s/")
        assert await page.evaluate("navigator.clipboard.readText()") == url
        # No reload: the figures the server answered.
        await expect(page.locator("#share-count")).to_have_text("1 share")
        await expect(page.locator("#share-recent")).to_have_text(
            "1 person shared this in the last hour"
        )
        await page.locator("#share-panel [data-channel='qr']").click()
        await expect(page.locator("#share-qr")).to_be_visible()
        await expect(page.locator("#share-count")).to_have_text("2 shares")
        # A tap elsewhere closes it.
        await page.locator("h1.stream-title").click()
        await expect(page.locator("#share-panel")).to_be_hidden()
        assert errors == []
        await context.close()


async def test_on_a_phone_anonymous_copies_the_plain_address(room: Room) -> None:
    base = room.server.base_url
    async with chromium() as browser, httpx.AsyncClient(base_url=base, timeout=30) as http:
        before = (await http.get(f"/v1/streams/{room.stream_id}/sharers")).json()["shares"]
        context = await _context(browser, room, PHONE, None)
        page = await context.new_page()
        errors = collect_errors(page)
        await page.goto(f"{base}/live/{room.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
        await page.locator("#share-open").scroll_into_view_if_needed()
        await _open_moves_nothing(page, PHONE, "phone-anonymous")

        await page.locator("#share-open").click()
        plain = f"{base}/live/{room.stream_id}"
        await expect(page.locator("#share-url")).to_have_value(plain)
        await expect(page.locator("#share-panel a[href^='/login']")).to_be_visible()
        await page.locator("#share-panel [data-channel='copy']").click()
        await expect(page.locator(".toast")).to_have_text("Link copied")
        assert await page.evaluate("navigator.clipboard.readText()") == plain
        # Nothing made, nobody credited: the count is the same on the page and the server.
        await expect(page.locator("#share-count")).to_have_attribute("data-count", str(before))
        after = (await http.get(f"/v1/streams/{room.stream_id}/sharers")).json()["shares"]
        assert after == before
        await page.locator("#share-close").click()
        await expect(page.locator("#share-panel")).to_be_hidden()
        assert errors == []
        await context.close()


async def test_in_arabic_the_panel_mirrors_and_counts_in_arabic(room: Room) -> None:
    base = room.server.base_url
    async with chromium() as browser:
        for viewport, name, handle in (
            (DESKTOP, "arabic", room.viewers[1]),
            (PHONE, "arabic-phone", room.viewers[2]),
        ):
            context = await _context(browser, room, viewport, handle, locale="ar")
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/live/{room.stream_id}")
            assert await page.get_attribute("html", "dir") == "rtl"
            await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
            await page.locator("#share-open").scroll_into_view_if_needed()
            shares = int(await page.locator("#share-count").get_attribute("data-count") or "0")
            await _open_moves_nothing(page, viewport, name)
            await page.locator("#share-open").click()
            if viewport is DESKTOP:  # the popover hangs from the button's inline end: its right
                panel, button = await _box(page, "#share-panel"), await _box(page, "#share-open")
                assert abs(panel["x"] - button["x"]) < 1
            await page.locator("#share-panel [data-channel='copy']").click()
            await expect(page.locator("#share-count")).to_have_attribute(
                "data-count", str(shares + 1)
            )
            # Arabic's own form for the new number (two: the dual; three: the plural).
            expected = {
                1: "مشاركة واحدة (1)",
                2: "مشاركتان (2)",
                3: "3 مشاركات",
                4: "4 مشاركات",
                5: "5 مشاركات",
            }[shares + 1]
            await expect(page.locator("#share-count")).to_have_text(expected)
            await screenshot(page, f"share-panel-{name}-shared")
            assert errors == []
            await context.close()
