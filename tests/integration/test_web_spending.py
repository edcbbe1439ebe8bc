"""Spending safely and clearly, in Chromium against a real server (#18 items 3, 6, 7, 12, 13,
15): an expensive gift asks first (Escape says no, Send sends exactly one) while a Rose is one
tap and a confirmed combo gift repeats without asking; coins are bought in a sheet over the
stream and the checkout comes back to the room with the new balance, or the order is cancelled
there; a viewer under age is told at sign-up and finds the tray off with the reason; the shop
prices a custom amount live, refuses one out of bounds in the page's language; numbers and
counts are written one way per language. Desktop, phone and Arabic where layout is involved.

One server for the module (SQLite: the storage rules are tested on both databases in
test_topup_cancel.py); the threshold is lowered to 100 coins so that a combo gift (Hand
Hearts) is an expensive one too.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from liveclient import person
from playwright.async_api import Browser, BrowserContext, Page, expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

pytestmark = pytest.mark.parametrize(
    "module_bare_db_url", ["sqlite"], indirect=True, scope="module"
)

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
CONFIRM_MIN_COINS = 100
UNIVERSE = 34_999
HAND_HEARTS = 100
_keys = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Room:
    server: ServerProcess
    stream_id: str

    @property
    def base(self) -> str:
        return self.server.base_url


@pytest.fixture(scope="module")
def room(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Room]:
    env = {"GIFTWAVE_GIFT_CONFIRM_MIN_COINS": str(CONFIRM_MIN_COINS)}
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("spending"), **env) as server:
        yield Room(server, asyncio.run(_go_live(server.base_url)))


async def _go_live(base: str) -> str:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        _, token = await person(http, "creator")
        r = await http.post(
            "/v1/streams", json={"title": "Spending"}, headers={"Authorization": f"Bearer {token}"}
        )
        assert r.status_code == 201, r.text
        return str(r.json()["id"])


async def _viewer(base: str, coins: int) -> tuple[str, dict[str, str]]:
    """A viewer with ``coins`` from the operator: handle and bearer header."""
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        user_id, token = await person(http, "viewer")
        if coins:
            r = await http.post(
                f"/v1/admin/users/{user_id}/coins",
                json={"coins": coins, "idempotency_key": f"spend-{next(_keys)}"},
                headers=OPERATOR,
            )
            assert r.status_code == 200, r.text
        auth = {"Authorization": f"Bearer {token}"}
        handle = (await http.get("/v1/me", headers=auth)).json()["handle"]
    return str(handle), auth


async def _api(base: str, auth: dict[str, str], path: str) -> Any:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.get(path, headers=auth)
        assert r.status_code == 200, r.text
        return r.json()


async def _logged_in(
    browser: Browser, base: str, handle: str, viewport: dict[str, int], locale: str = "en-US"
) -> BrowserContext:
    context = await browser.new_context(viewport=viewport, locale=locale)
    r = await context.request.post(
        f"{base}/v1/auth/login", data={"login": handle, "password": PASSWORD}
    )
    assert r.ok, await r.text()
    return context


async def _in_room(page: Page, room: Room) -> None:
    await page.goto(f"{room.base}/live/{room.stream_id}")
    await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
    await expect(page.locator("#balance")).not_to_have_attribute("data-balance", "")


async def _open_tray(page: Page) -> None:
    """On a phone the tray is a sheet over the stream, opened by the Gift button."""
    opener = page.locator("#gift-open")
    if await opener.is_visible():
        await opener.click()
        await expect(page.locator("#gift-sheet .gift-button").first).to_be_visible()


async def _inside_viewport(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    size = page.viewport_size
    assert box is not None, selector
    assert size is not None
    assert box["x"] >= 0, (selector, box)
    assert box["y"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= size["width"] + 0.5, (selector, box, size)
    assert box["y"] + box["height"] <= size["height"] + 0.5, (selector, box, size)


# --- item 3: an expensive gift asks first -----------------------------------------------------


async def test_an_expensive_gift_asks_before_it_is_sent_and_a_rose_does_not(room: Room) -> None:
    coins = UNIVERSE + 3 * HAND_HEARTS + 10
    handle, auth = await _viewer(room.base, coins)
    async with chromium() as browser:
        context = await _logged_in(browser, room.base, handle, DESKTOP)
        page = await context.new_page()
        errors = collect_errors(page)
        await _in_room(page, room)
        dialog = page.locator("#gift-confirm")
        universe = page.locator(".gift-button[data-gift='universe']")

        # One tap on the Universe bills nothing: it asks, naming gift, count, coins and money.
        await universe.click()
        await expect(dialog).to_be_visible()
        await expect(page.locator("#gift-confirm-title")).to_have_text("Send Universe?")
        await expect(page.locator("#gift-confirm-what")).to_have_text("Universe x1")
        # 34,999 coins at the custom rate (24,999 cents per 17,500 coins) is $499.97 (rounded up).
        await expect(page.locator("#gift-confirm-price")).to_have_text(
            "34,999 coins (about $499.97)"
        )
        await expect(page.locator("#gift-confirm button.cancel")).to_be_focused()
        await _inside_viewport(page, "#gift-confirm")
        await screenshot(page, "gift-confirm-desktop")
        await page.keyboard.press("Escape")
        await expect(dialog).to_be_hidden()
        await expect(universe).to_be_focused()  # back where the viewer was
        await asyncio.sleep(0.5)
        assert (await _api(room.base, auth, "/v1/me/wallet"))["coins"] == coins
        assert await page.locator("#lane li.alert[data-gift='universe']").count() == 0

        # Keyboard only: Enter on the gift asks; Cancel says no.
        await universe.focus()
        await page.keyboard.press("Enter")
        await expect(dialog).to_be_visible()
        await page.keyboard.press("Enter")  # the focused Cancel
        await expect(dialog).to_be_hidden()

        # Confirmed: exactly one goes out.
        await universe.click()
        await page.locator("#gift-confirm button.send").click()
        await expect(page.locator("#lane li.alert[data-gift='universe']")).to_have_attribute(
            "data-count", "1", timeout=10_000
        )
        await expect(page.locator("#balance")).to_have_attribute(
            "data-balance", str(coins - UNIVERSE), timeout=10_000
        )

        # A Rose stays one tap: no question, one coin.
        await page.locator(".gift-button[data-gift='rose']").click()
        await expect(page.locator("#lane li.alert[data-gift='rose']")).to_have_attribute(
            "data-count", "1", timeout=10_000
        )
        await expect(dialog).to_be_hidden()

        # An expensive combo gift asks once; within its combo the next taps just send.
        hearts = page.locator(".gift-button[data-gift='hand_hearts']")
        await hearts.click()
        await expect(dialog).to_be_visible()
        await page.locator("#gift-confirm button.send").click()
        await hearts.click()
        await hearts.click()
        await expect(page.locator("#lane li.alert[data-gift='hand_hearts']")).to_have_attribute(
            "data-count", "3", timeout=10_000
        )
        await expect(dialog).to_be_hidden()
        wallet = await _api(room.base, auth, "/v1/me/wallet")
        assert wallet["coins"] == coins - UNIVERSE - 1 - 3 * HAND_HEARTS
        assert errors == []
        await context.close()


@pytest.mark.parametrize(
    ("viewport", "locale", "name", "title"),
    [(PHONE, "en-US", "phone", "Send Universe?"), (DESKTOP, "ar", "arabic", "إرسال الكون؟")],
)
async def test_the_confirm_fits_a_phone_and_speaks_arabic(
    room: Room, viewport: dict[str, int], locale: str, name: str, title: str
) -> None:
    handle, auth = await _viewer(room.base, UNIVERSE)
    async with chromium() as browser:
        context = await _logged_in(browser, room.base, handle, viewport, locale)
        page = await context.new_page()
        errors = collect_errors(page)
        await _in_room(page, room)
        await _open_tray(page)
        await page.locator(".gift-button[data-gift='universe']").click()
        await expect(page.locator("#gift-confirm")).to_be_visible()
        await expect(page.locator("#gift-confirm-title")).to_have_text(title)
        await _inside_viewport(page, "#gift-confirm")
        for button in ("#gift-confirm button.cancel", "#gift-confirm button.send"):
            await _inside_viewport(page, button)
        await screenshot(page, f"gift-confirm-{name}")
        await page.locator("#gift-confirm button.cancel").click()
        await expect(page.locator("#gift-confirm")).to_be_hidden()
        assert (await _api(room.base, auth, "/v1/me/wallet"))["coins"] == UNIVERSE
        assert errors == []
        await context.close()


# --- item 6: recharge in the room ------------------------------------------------------------


async def test_recharge_in_the_room_comes_back_to_the_room_with_the_new_balance(
    room: Room,
) -> None:
    handle, auth = await _viewer(room.base, 0)
    room_url = f"{room.base}/live/{room.stream_id}"
    async with chromium() as browser:
        context = await _logged_in(browser, room.base, handle, PHONE)
        page = await context.new_page()
        errors = collect_errors(page)
        await _in_room(page, room)

        # Not enough coins: "Buy coins" opens the sheet over the stream, not the shop.
        await _open_tray(page)
        await page.locator(".gift-button[data-gift='rose']").click()
        await page.locator(".toast.error a[href='/shop']").click()
        sheet = page.locator("#recharge")
        await expect(sheet).to_be_visible()
        assert page.url == room_url
        await expect(sheet.locator(".recharge-packages li")).to_have_count(7)
        await expect(sheet.locator("li[data-coins='700'] .package-coins")).to_have_text("700 coins")
        await _inside_viewport(page, "#recharge")
        await screenshot(page, "recharge-sheet-phone")

        # Pay at the checkout; it comes back to this room, where the coins arrive.
        await sheet.locator("li[data-coins='700'] button").click()
        await page.wait_for_url("**/sandbox/checkout/**")
        await page.click("form[action*='/pay'] button")
        await page.click("a.back")
        await page.wait_for_url(room_url)  # the order's id is taken out of the address
        await expect(page.locator("body")).to_have_attribute("data-topup", "paid", timeout=15_000)
        await expect(page.locator("#balance")).to_have_attribute("data-balance", "700")
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)

        # Leaving the checkout unpaid: back in the room, resume or cancel it.
        await page.locator("#recharge-open").click()
        await sheet.locator("li[data-coins='350'] button").click()
        await page.wait_for_url("**/sandbox/checkout/**")
        await page.click("a.leave")
        await page.wait_for_url(room_url)
        await expect(page.locator("#recharge-pending")).to_be_visible(timeout=10_000)
        resume = await page.locator("#recharge-resume").get_attribute("href")
        assert resume is not None
        assert "/sandbox/checkout/" in resume
        await page.locator("#recharge-cancel").click()
        await expect(page.locator("body")).to_have_attribute("data-topup", "cancelled")
        orders = await _api(room.base, auth, "/v1/topups")
        assert [(o["coins"], o["status"]) for o in orders] == [(350, "cancelled"), (700, "paid")]
        assert (await _api(room.base, auth, "/v1/me/wallet"))["coins"] == 700
        assert errors == []
        await context.close()


# --- items 7 and 12: sign-up says the rules, and a minor is told ------------------------------


async def _sign_up(page: Page, base: str, handle: str, birth: str, country: str) -> None:
    await page.goto(f"{base}/signup?next=/live/x")
    await page.fill("input[name=handle]", handle)
    await page.fill("input[name=email]", f"{handle}@spend.test")
    await page.fill("input[name=password]", "a-long-password")
    await page.fill("input[name=birth_date]", birth)
    await page.select_option("select[name=country]", country)
    await page.click("button[type=submit]")


@pytest.mark.parametrize(
    ("locale", "country_name", "rule_bad", "notice", "tray_reason"),
    [
        (
            "ar",
            "الولايات المتحدة",
            "اسم المستخدم من 3 إلى 24 من a-z و0-9 و_ و.",
            "حسابك جاهز. إرسال الهدايا وشراء العملات لمن بلغوا 18 عامًا فأكثر فقط",
            "الهدايا والعملات لمن بلغوا 18 عامًا فأكثر فقط",
        ),
        (
            "es",
            "Estados Unidos",
            "El usuario tiene de 3 a 24 caracteres: a-z, 0-9, _ y .",
            "Tu cuenta está lista. Enviar regalos y comprar monedas es solo para mayores de 18",
            "Los regalos y las monedas son solo para mayores de 18 años",
        ),
    ],
)
async def test_a_minor_is_told_at_sign_up_and_finds_gifting_off_in_their_language(
    room: Room, locale: str, country_name: str, rule_bad: str, notice: str, tray_reason: str
) -> None:
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, locale=locale)
        page = await context.new_page()
        errors = collect_errors(page)
        await page.goto(f"{room.base}/signup")
        # The handle's rule beside the field, judged while typing, in the page's language.
        handle = page.locator("input[name=handle]")
        await expect(page.locator("#handle-rule")).to_be_visible()
        await handle.fill("No Spaces!")
        await expect(page.locator("#handle-rule")).to_have_attribute("data-state", "bad")
        assert await handle.evaluate("e => e.validationMessage") == rule_bad
        await handle.fill("fine_handle.1")
        await expect(page.locator("#handle-rule")).to_have_attribute("data-state", "ok")
        # A country picker, names in the page's language.
        option = page.locator("select[name=country] option[value='US']")
        await expect(option).to_have_text(country_name)
        await screenshot(page, f"signup-{locale}-phone")

        # A refusal from the API, in the page's language (not its English detail).
        taken = f"minor{locale}{next(_keys)}"
        async with httpx.AsyncClient(base_url=room.base, timeout=30) as http:
            r = await http.post(
                "/v1/auth/register",
                json={
                    "handle": taken, "email": f"{taken}@spend.test", "password": PASSWORD,
                    "birth_date": "1990-01-01", "country": "US",
                },
            )  # fmt: skip
            assert r.status_code == 201, r.text
        await _sign_up(page, room.base, taken, "2012-06-01", "US")
        error = page.locator("#auth-form .form-error")
        await expect(error).to_be_visible()
        assert (await error.text_content() or "") == await page.evaluate(
            "JSON.parse(document.getElementById('boot').textContent).problems.already_registered"
        )
        assert "already" not in (await error.text_content() or "")

        # Signed up under age: told at once, before anything is refused.
        await page.fill("input[name=handle]", f"young{locale}{next(_keys)}")
        await page.fill("input[name=email]", f"young{locale}{next(_keys)}@spend.test")
        await page.click("button[type=submit]")
        await expect(page.locator("#age-notice")).to_be_visible(timeout=10_000)
        await expect(page.locator("#age-notice .age-text")).to_contain_text(notice)
        await screenshot(page, f"signup-minor-{locale}-phone")

        # In the room, the tray is off and says why.
        await page.goto(f"{room.base}/live/{room.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
        await expect(page.locator("#tray-unavailable")).to_have_text(tray_reason)
        await _open_tray(page)
        rose = page.locator(".gift-button[data-gift='rose']")
        await expect(rose).to_be_disabled()
        assert await rose.get_attribute("aria-describedby") == "tray-unavailable"
        await expect(page.locator("#recharge-open")).to_be_hidden()
        await screenshot(page, f"room-minor-{locale}-phone")

        # The shop says it too, and buys nothing.
        await page.goto(f"{room.base}/shop")
        await expect(page.locator("#age-notice")).to_be_visible()
        await expect(page.locator("#packages li button").first).to_be_disabled()
        width = await page.evaluate("document.documentElement.scrollWidth")
        assert width <= PHONE["width"]
        assert [e for e in errors if "409 (Conflict)" not in e] == []  # the taken handle
        await context.close()


# --- items 13 and 15: the custom amount's price, bounds, and one way to write numbers --------


@pytest.mark.parametrize(
    ("locale", "price", "too_few", "grouped"),
    [
        ("es", "Precio: 142,86 US$", "Elige entre 30 y 2.500.000 monedas", "1.400"),
        ("ar", "السعر: ‏142.86 US$", "اختر بين 30 و2,500,000 عملة", "1,400"),
    ],
)
async def test_the_shop_prices_a_custom_amount_live_and_refuses_one_out_of_bounds(
    room: Room, locale: str, price: str, too_few: str, grouped: str
) -> None:
    handle, auth = await _viewer(room.base, 1500)
    async with chromium() as browser:
        context = await _logged_in(browser, room.base, handle, DESKTOP, locale)
        page = await context.new_page()
        errors = collect_errors(page)
        await page.goto(f"{room.base}/shop")
        coins = page.locator("#custom input[name=coins]")
        assert await coins.get_attribute("min") == "30"

        # Numbers: the script's (balance, packages) grouped as the template's (the rule).
        await expect(page.locator("#balance")).to_have_text(f"1{grouped[1]}500")
        await expect(page.locator("#packages li[data-coins='1400'] bdi")).to_have_text(grouped)
        sep = grouped[1]
        assert f"2{sep}500{sep}000" in (await page.locator("#custom-rule").text_content() or "")

        # 10,000 coins: the price shows as it is typed, at the dearest package's rate.
        await coins.fill("10000")
        await expect(page.locator("#custom-price")).to_have_text(price)
        await coins.fill("1")
        await expect(page.locator("#custom-price")).to_have_text("")
        await page.click("#custom button[type=submit]")
        assert await coins.evaluate("e => e.validationMessage") == too_few
        assert "/shop" in page.url
        assert await _api(room.base, auth, "/v1/topups") == []
        await screenshot(page, f"shop-custom-{locale}")

        # The shown price is the price charged; an unpaid order can be cancelled from the list.
        await coins.fill("10000")
        await page.click("#custom button[type=submit]")
        await page.wait_for_url("**/sandbox/checkout/**")
        [order] = await _api(room.base, auth, "/v1/topups")
        assert (order["coins"], order["amount_minor"], order["currency"]) == (10_000, 14_286, "USD")
        await page.goto(f"{room.base}/shop")
        row = page.locator(f"#orders tr[data-order='{order['id']}']")
        await expect(row.locator("a.resume")).to_have_attribute("href", order["checkout_url"])
        await row.locator("button.cancel").click()
        await expect(row).to_have_attribute("data-status", "cancelled")
        assert errors == []
        await context.close()


async def test_counts_are_said_in_the_right_plural_form(room: Room) -> None:
    """Screen readers hear "1 coin", not "1 coins": the tray's labels from the catalogue."""
    async with chromium() as browser:
        for locale, rose, lion in (
            ("en-US", "Send Rose for 1 coin", "Send Lion for 29,999 coins"),
            ("es", "Enviar Rosa por 1 moneda", "Enviar León por 29.999 monedas"),
            ("ar", "إرسال وردة مقابل عملة واحدة", "إرسال أسد مقابل 29,999 عملة"),
        ):
            context = await browser.new_context(viewport=DESKTOP, locale=locale)
            page = await context.new_page()
            await page.goto(f"{room.base}/live/{room.stream_id}")
            for gift, label in (("rose", rose), ("lion", lion)):
                button = page.locator(f".gift-button[data-gift='{gift}']")
                await expect(button).to_have_attribute("aria-label", label)
            await context.close()
