"""A paid highlighted message in Debian's Chromium against a real server, in English, Spanish
and Arabic (right to left): pinned above the chat on the viewer page and on the OBS overlay,
coloured by its tier, there for a viewer who arrives after it was sent (the room's snapshot),
gone at its tier's time, and gone at once when the creator hides it. No console error (the
pages' strict CSP: no inline style or script)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from browser import chromium, collect_errors, screenshot
from liveclient import go_live, person
from playwright.async_api import expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
SHORT_S = 3
TIERS = [
    {"min_coins": 100, "pinned_s": SHORT_S, "colour": "blue"},
    {"min_coins": 500, "pinned_s": 600, "colour": "teal"},
]
COINS_500 = {"en": "500 coins", "es": "500 monedas"}
pytestmark = pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture
def server(bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with one_server(
        bare_db_url,
        tmp_path_factory.mktemp("paid-messages"),
        GIFTWAVE_PAID_MESSAGE_TIERS=orjson.dumps(TIERS).decode(),
    ) as proc:
        yield proc


@pytest.mark.parametrize("locale", ["en", "es", "ar"])
async def test_a_paid_message_is_pinned_on_the_page_and_the_overlay(
    server: ServerProcess, locale: str
) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, creator = await person(http, "creator")
        fan_id, fan = await person(http, "viewer")
        r = await http.post(
            f"/v1/admin/users/{fan_id}/coins",
            json={"coins": 2_000, "idempotency_key": "web"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        stream = await go_live(http, creator, "paid messages")
        by_creator = {"Authorization": f"Bearer {creator}"}
        overlay_url = (await http.get("/v1/creators/me/overlay", headers=by_creator)).json()["url"]

        async def paid(key: str, count: int, text: str) -> str:
            r = await http.post(
                f"/v1/streams/{stream}/gifts",
                json={
                    "gift_id": "hand_hearts",
                    "count": count,
                    "idempotency_key": key,
                    "message": text,
                },
                headers={"Authorization": f"Bearer {fan}"},
            )
            assert r.status_code == 201, r.text
            return str(r.json()["send_id"])

        # Sent before anyone opens the pages: they draw it from the room's snapshot.
        first = await paid("p1", 5, f"first · {locale}")
        viewer = await (
            await browser.new_context(viewport={"width": 1366, "height": 768}, locale=locale)
        ).new_page()
        await viewer.goto(f"{base}/live/{stream}?lang={locale}")
        overlay = await (
            await browser.new_context(viewport={"width": 1280, "height": 720}, locale=locale)
        ).new_page()
        await overlay.goto(overlay_url.replace("http://localhost", base) + f"&lang={locale}")
        errors = collect_errors(viewer, overlay)
        for page in (viewer, overlay):
            assert await page.get_attribute("html", "dir") == ("rtl" if locale == "ar" else "ltr")
            pin = page.locator(f'#paid-pins li[data-send="{first}"]')
            await expect(pin).to_be_visible(timeout=10_000)
            await expect(pin).to_have_class("paid paid-teal")
            await expect(pin.locator(".paid-text")).to_have_text(f"first · {locale}")
            if locale in COINS_500:
                await expect(pin.locator(".paid-coins")).to_have_text(COINS_500[locale])
        await screenshot(viewer, f"paid-message-viewer-{locale}")
        await screenshot(overlay, f"paid-message-overlay-{locale}")

        # Sent while they watch: pinned at once, below the dearer one, gone at its time.
        second = await paid("p2", 1, "short")
        for page in (viewer, overlay):
            pin = page.locator(f'#paid-pins li[data-send="{second}"]')
            await expect(pin).to_be_visible(timeout=10_000)
            await expect(pin).to_have_class("paid paid-blue")
            await expect(page.locator("#paid-pins li").first).to_have_attribute("data-send", first)
        for page in (viewer, overlay):
            await expect(page.locator(f'#paid-pins li[data-send="{second}"]')).to_have_count(
                0, timeout=(SHORT_S + 5) * 1000
            )

        # The creator hides the first: off both screens at once.
        r = await http.post(f"/v1/streams/{stream}/paid-messages/{first}/hide", headers=by_creator)
        assert r.status_code == 200, r.text
        for page in (viewer, overlay):
            await expect(page.locator("#paid-pins li")).to_have_count(0, timeout=10_000)
            await expect(page.locator("#paid-pins")).to_be_hidden()
        assert errors == []


async def test_a_viewer_sends_one_from_the_gift_sheet(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, creator = await person(http, "creator")
        fan_id, fan = await person(http, "viewer")
        me = (await http.get("/v1/me", headers={"Authorization": f"Bearer {fan}"})).json()
        r = await http.post(
            f"/v1/admin/users/{fan_id}/coins",
            json={"coins": 1_000, "idempotency_key": "web"},
            headers=ADMIN,
        )
        assert r.status_code == 200, r.text
        stream = await go_live(http, creator, "paid messages")
        page = await (await browser.new_context(viewport={"width": 1366, "height": 768})).new_page()
        errors = collect_errors(page)
        await page.goto(f"{base}/login?next=/live/{stream}")
        await page.fill("input[name=login]", me["handle"])
        await page.fill("input[name=password]", PASSWORD)
        await page.click("button[type=submit]")
        await page.wait_for_url(f"{base}/live/{stream}")
        await page.wait_for_selector("body[data-connected='1']", state="attached", timeout=10_000)
        # Below the first tier: refused, said, nothing charged, the text kept.
        await page.fill("#paid-text", "hello from the sheet")
        await page.click('.gift-button[data-gift="rose"]')
        await expect(page.get_by_text("A highlighted message needs a dearer gift")).to_be_visible()
        await expect(page.locator("#paid-text")).to_have_value("hello from the sheet")
        # With a gift that buys a tier: pinned, and the field is empty for the next gift.
        await page.click('.gift-button[data-gift="hand_hearts"]')
        pin = page.locator("#paid-pins li.paid-blue")
        await expect(pin.locator(".paid-text")).to_have_text("hello from the sheet", timeout=10_000)
        await expect(page.locator("#paid-text")).to_have_value("")
        wallet = await http.get("/v1/me/wallet", headers={"Authorization": f"Bearer {fan}"})
        assert wallet.json()["coins"] == 900
        assert errors == []
