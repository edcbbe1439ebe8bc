"""The studio, the admin console and the charts in a real browser (Debian's Chromium), issue #18:
payouts name the creator by @handle (table and confirmation, also in Arabic); the studio's
"gifts per minute" starts from the stream's last minute, not from 0, and goes on live; chart
axes have round ticks, whole ones for whole things, and labels that fit (desktop, phone, Arabic).

One server for the module; each test makes the people it needs.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, Final

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from playwright.async_api import Browser, BrowserContext, Page, expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)

OPERATOR: Final = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
PASSWORD: Final = "pw-pw-pw-pw"
DESKTOP: Final = {"width": 1366, "height": 768}
PHONE: Final = {"width": 360, "height": 740}
LAYOUTS: Final = (("desktop", DESKTOP, "en"), ("phone", PHONE, "en"), ("ar", DESKTOP, "ar"))
# Charts of people counted: whole ticks only.
COUNTED_CHARTS: Final = ("New gifters by first week", "Creators by total earnings (USD)")
_n = itertools.count(1)


@dataclass(frozen=True, slots=True)
class Person:
    id: int
    handle: str
    auth: dict[str, str]


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("creator-tools")
    with one_server(module_bare_db_url, tmp, GIFTWAVE_PAYOUT_MIN_CENTS="100") as running:
        yield running


async def _ok(response: Any, status: int = 200) -> Any:
    r = await response
    assert r.status_code == status, r.text
    return r.json()


async def _person(http: httpx.AsyncClient, role: str, prefix: str = "") -> Person:
    handle = f"{prefix or role}{next(_n)}"
    body = {
        "handle": handle,
        "email": f"{handle}@tools.test",
        "password": PASSWORD,
        "birth_date": "1990-01-01",
        "country": "US",
        "role": role,
    }
    r = await _ok(http.post("/v1/auth/register", json=body), 201)
    return Person(int(r["user"]["id"]), handle, {"Authorization": f"Bearer {r['token']}"})


async def _admin(http: httpx.AsyncClient) -> Person:
    admin = await _person(http, "viewer", "ops")
    await _ok(http.patch(f"/v1/admin/users/{admin.id}", json={"role": "admin"}, headers=OPERATOR))
    return admin


async def _grant(http: httpx.AsyncClient, who: Person, coins: int) -> None:
    body = {"coins": coins, "idempotency_key": f"grant-{who.id}-{next(_n)}"}
    await _ok(http.post(f"/v1/admin/users/{who.id}/coins", json=body, headers=OPERATOR))


async def _gift(
    http: httpx.AsyncClient, who: Person, stream: str, gift: str, count: int = 1
) -> None:
    body = {"gift_id": gift, "count": count, "idempotency_key": f"g{next(_n)}"}
    await _ok(http.post(f"/v1/streams/{stream}/gifts", json=body, headers=who.auth), 201)


async def _live(http: httpx.AsyncClient, creator: Person, title: str = "Tools night") -> str:
    r = await _ok(http.post("/v1/streams", json={"title": title}, headers=creator.auth), 201)
    return str(r["id"])


async def _logged_in(
    browser: Browser, base: str, who: Person, viewport: dict[str, int], locale: str = "en"
) -> BrowserContext:
    """A browser context with ``who``'s session cookie, logged in through the API."""
    context = await browser.new_context(viewport=viewport, locale=locale)
    r = await context.request.post(
        f"{base}/v1/auth/login", data={"login": who.handle, "password": PASSWORD}
    )
    assert r.ok, await r.text()
    return context


async def _no_wider_than_the_window(page: Page) -> None:
    width = await page.evaluate("() => [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width


# ---- item 8: payouts by @handle ---------------------------------------------------------


async def test_payouts_name_the_creator_by_handle_in_the_table_and_the_dialog(
    server: ServerProcess,
) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        creator = await _person(http, "creator", "payee")
        fan = await _person(http, "viewer")
        admin = await _admin(http)
        stream = await _live(http, creator)
        await _grant(http, fan, 1000)
        await _gift(http, fan, stream, "hand_hearts", 10)
        body = {"diamonds": 600, "idempotency_key": "cash"}
        payout = await _ok(http.post("/v1/payouts", json=body, headers=creator.auth), 201)
        queue = await _ok(http.get("/v1/admin/payouts", headers=admin.auth))
        [listed] = [p for p in queue if p["id"] == payout["id"]]
        assert listed["creator_handle"] == creator.handle

        for name, viewport, locale in LAYOUTS:
            context = await _logged_in(browser, base, admin, viewport, locale)
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/admin?lang={locale}#payouts")
            row = page.locator(f"#payout-table tr[data-payout='{payout['id']}']")
            await expect(row.locator("td.payee")).to_have_text(f"@{creator.handle}")
            await expect(row).not_to_contain_text(f"#{creator.id}")
            for action in ("approve", "reject"):
                await row.locator(f"button.{action}").click()
                text = page.locator("#confirm-text")
                await expect(text).to_contain_text(f"@{creator.handle}")
                await expect(text).not_to_contain_text("#")
                if action == "approve":
                    await screenshot(page, f"admin-payout-dialog-{name}")
                await page.locator("#confirm-dialog").press("Escape")  # nothing is decided
                await expect(page.locator("#confirm-dialog")).to_be_hidden()
            await _no_wider_than_the_window(page)
            assert errors == [], errors
            await context.close()
        still = await _ok(http.get(f"/v1/payouts/{payout['id']}", headers=creator.auth))
        assert still["status"] == "pending"


# ---- item 10: gifts per minute from the server ------------------------------------------


async def test_the_studio_gifts_per_minute_starts_from_the_last_minute_and_goes_on_live(
    server: ServerProcess,
) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        creator = await _person(http, "creator", "rate")
        fan = await _person(http, "viewer")
        stream = await _live(http, creator)
        await _grant(http, fan, 1000)
        await _gift(http, fan, stream, "rose", 7)
        await _gift(http, fan, stream, "finger_heart", 2)  # a second kind: 9 gifts in all
        sent = 9
        for name, viewport, locale in LAYOUTS:
            context = await _logged_in(browser, base, creator, viewport, locale)
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/studio?lang={locale}")
            await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
            await expect(page.locator("#stat-gpm")).to_have_text(str(sent))  # not 0 on a load
            if name == "desktop":  # and it goes on counting what comes in
                await _gift(http, fan, stream, "panda", 3)
                sent += 3
                await expect(page.locator("#stat-gpm")).to_have_text(str(sent))
            await screenshot(page, f"studio-gifts-per-minute-{name}")
            assert errors == [], errors
            await context.close()


# ---- item 11: chart axes -------------------------------------------------------------------


async def _tick_labels(page: Page) -> list[dict[str, Any]]:
    """Every value label of every chart, with its box and its chart's box."""
    found: list[dict[str, Any]] = await page.evaluate(
        """() => [...document.querySelectorAll('figure.chart')].flatMap((fig) => {
            const svg = fig.querySelector('svg');
            if (!svg) return [];
            const box = svg.getBoundingClientRect();
            const ticks = 'text.tick[text-anchor=end], text.tick[text-anchor=start]';
            return [...svg.querySelectorAll(ticks)].map((t) => {
                const r = t.getBoundingClientRect();
                return { chart: fig.querySelector('figcaption').textContent, text: t.textContent,
                         left: r.left, right: r.right, svgLeft: box.left, svgRight: box.right };
            });
        })"""
    )
    return found


async def test_chart_axes_have_round_ticks_whole_for_whole_things_and_labels_that_fit(
    server: ServerProcess,
) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        creator = await _person(http, "creator", "chart")
        fan = await _person(http, "viewer")
        admin = await _admin(http)
        stream = await _live(http, creator)
        await _grant(http, fan, 40_000)
        await _gift(http, fan, stream, "lion")  # 29,999
        await _gift(http, fan, stream, "hand_hearts", 53)  # 5,300
        await _gift(http, fan, stream, "rose", 67)  # 35,366 coins spent today in all
        for name, viewport, locale in LAYOUTS:
            context = await _logged_in(browser, base, admin, viewport, locale)
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/admin/economy?lang={locale}&creator={creator.id}")
            labels = await _tick_labels(page)
            assert labels, "no chart has a value axis"
            for label in labels:
                # Inside its chart: not cut at the start ("5,366.67" for 35,366.67).
                assert label["left"] >= label["svgLeft"] - 0.5, label
                assert label["right"] <= label["svgRight"] + 0.5, label
            if locale == "en":
                coins = [x["text"] for x in labels if x["chart"] == "Coins per day"]
                assert "40,000" in coins, coins  # a round top above 35,366
                whole = [x["text"] for x in labels if x["chart"] in COUNTED_CHARTS]
                assert whole, labels
                assert all("." not in t for t in whole), whole  # no fraction of a person
            await page.locator("figure.chart").first.scroll_into_view_if_needed()
            await screenshot(page, f"economy-chart-axes-{name}")
            assert errors == [], errors
            await context.close()


# ---- item 18: the gift tray is one tab stop -------------------------------------------------


async def _focused_gift(page: Page) -> str | None:
    found: str | None = await page.evaluate(
        "() => document.activeElement?.closest('.gift-button')?.dataset.gift ?? null"
    )
    return found


async def test_the_gift_tray_is_one_tab_stop_with_arrow_keys_both_ways(
    server: ServerProcess,
) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        creator = await _person(http, "creator", "tray")
        stream = await _live(http, creator)
        for name, viewport, locale in LAYOUTS:
            context = await browser.new_context(viewport=viewport, locale=locale)
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/live/{stream}?lang={locale}")
            if await page.locator("#gift-open").is_visible():  # the phone's tray is a sheet
                await page.locator("#gift-open").click()
            gifts = await page.eval_on_selector_all(
                ".tray .gift-button", "bs => bs.map((b) => [b.dataset.gift, b.tabIndex])"
            )
            assert len(gifts) > 3, (await page.content())[:3000]
            assert [tab for _, tab in gifts].count(0) == 1, gifts  # one tab stop, not 23
            order = [g for g, _ in gifts]
            await page.locator(".tray .gift-button").first.focus()
            forward, back = (
                ("ArrowLeft", "ArrowRight") if locale == "ar" else ("ArrowRight", "ArrowLeft")
            )
            await page.keyboard.press(forward)
            assert await _focused_gift(page) == order[1], name
            await page.keyboard.press(forward)
            await page.keyboard.press(back)
            assert await _focused_gift(page) == order[1], name
            await page.keyboard.press("End")
            assert await _focused_gift(page) == order[-1], name
            await page.keyboard.press(forward)  # stays on the last: no wrap past the end
            assert await _focused_gift(page) == order[-1], name
            await page.keyboard.press("Home")
            assert await _focused_gift(page) == order[0], name
            await page.keyboard.press(forward)
            await page.keyboard.press("Tab")  # one Tab leaves the tray
            assert await _focused_gift(page) is None, name
            await page.keyboard.press("Shift+Tab")  # and comes back to the gift last used
            assert await _focused_gift(page) == order[1], name
            await screenshot(page, f"tray-keyboard-{name}")
            assert errors == [], errors
            await context.close()
