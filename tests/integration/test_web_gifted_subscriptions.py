"""Gifted subscriptions on the pages, in Debian's Chromium against a real server: a viewer gifts
two subscriptions in a live room (English); the two other viewers there (Spanish, and Arabic
right to left) see "… gifted 2 subscriptions!" naming them, each with their badge; in the
creator's subscribers-only chat (a creator without a fan club) their lines carry the badge
while a viewer who received none is refused; the buyer's coins drop by 2 * the price. No console
errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import chromium, collect_errors, log_in, screenshot
from liveclient import go_live, named_person
from playwright.async_api import Page, expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
PRICE = 300
COINS = 1_000
GIFTED = {"en": "gifted 2 subscriptions!", "es": "regaló 2 suscripciones!", "ar": "أهدى"}
SUBSCRIBERS_ONLY = {
    "en": "Only subscribers can chat here",
    "es": "Solo los suscriptores pueden chatear aquí",
    "ar": "الدردشة هنا للمشتركين فقط",
}
pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("web-gifted-subs")) as proc:
        yield proc


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def chat(page: Page, text: str) -> None:
    await page.fill("#chat-text", text)
    await page.click("#chat-form button[type=submit]")


async def test_a_viewer_gifts_subscriptions_that_land_on_the_others(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, creator_token, _ = await named_person(http, "creator")
        for path, body in (
            ("/v1/me/subscription-price", {"price_coins": PRICE}),
            ("/v1/me/chat-mode", {"mode": "subscribers"}),  # no fan club needed
        ):
            r = await http.put(path, json=body, headers=bearer(creator_token))
            assert r.status_code in (200, 201), r.text
        stream = await go_live(http, creator_token, "Late night piano")
        buyer_id, buyer_token, buyer = await named_person(http, "viewer")
        r = await http.post(
            f"/v1/admin/users/{buyer_id}/coins",
            json={"coins": COINS, "idempotency_key": f"grant-{buyer_id}"},
            headers=bearer(ADMIN_TOKEN),
        )
        assert r.status_code == 200, r.text
        room = f"/live/{stream}"
        recipients: dict[str, tuple[str, Page]] = {}
        for locale in ("es", "ar"):
            _, _, handle = await named_person(http, "viewer")
            page = await log_in(browser, base, handle, PASSWORD, room, locale=locale)
            recipients[locale] = (handle, page)
        pages = [page for _, page in recipients.values()]
        errors = collect_errors(*pages)
        for _, page in recipients.values():
            await expect(page.locator("body")).to_have_attribute("data-connected", "1")

        # Before the gift: a subscribers-only chat refuses them.
        es_page = recipients["es"][1]
        await chat(es_page, "hola")
        await expect(es_page.locator("#toasts")).to_contain_text(SUBSCRIBERS_ONLY["es"])

        buying = await log_in(browser, base, buyer, PASSWORD, room, locale="en")
        errors.watch(buying)
        if await buying.locator("#gift-open").is_visible():  # the phone's tray is a sheet
            await buying.locator("#gift-open").click()
        await buying.fill("#gift-subs-count", "2")
        await buying.click("#gift-subs-send")
        await expect(buying.locator("#toasts")).to_contain_text("You gifted 2 subscriptions")
        await expect(buying.locator("#chat-log .subs-gifted")).to_contain_text(GIFTED["en"])

        for locale, (_, page) in recipients.items():
            assert await page.get_attribute("html", "dir") == ("rtl" if locale == "ar" else "ltr")
            said = page.locator("#chat-log .subs-gifted")
            await expect(said).to_contain_text(buyer)
            await expect(said).to_contain_text(GIFTED[locale])
            for other, _ in recipients.values():
                mine = said.locator(".recipient", has_text=other)
                await expect(mine).to_have_count(1)
            await expect(said.locator(".sub-badge")).to_have_count(2)
            # Their own line now carries the badge, and the subscribers-only chat lets it through.
            await chat(page, f"thanks · {locale}")
            line = page.locator("#chat-log li", has_text=f"thanks · {locale}")
            await expect(line.locator(".sub-badge")).to_have_attribute("data-months", "1")
        await screenshot(recipients["ar"][1], "gifted-subscriptions-ar")

        wallet = await http.get("/v1/me/wallet", headers=bearer(buyer_token))
        assert wallet.json()["coins"] == COINS - 2 * PRICE
        assert errors == [], errors
        # The buyer is left out of the draw, and no viewer is left to receive a third one.
        await buying.fill("#gift-subs-count", "1")
        await buying.click("#gift-subs-send")
        await expect(buying.locator("#toasts")).to_contain_text("Only 0 viewers here")
        wallet = await http.get("/v1/me/wallet", headers=bearer(buyer_token))
        assert wallet.json()["coins"] == COINS - 2 * PRICE
        # The refusal, as the browser logs any 4xx answer: nothing else.
        assert errors == [
            "Failed to load resource: the server responded with a status of 409 (Conflict)"
        ], errors
