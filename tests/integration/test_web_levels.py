"""Gifter levels on the pages, in Debian's Chromium against a real server: a fan who gifted
wears their level badge beside their handle in the room's chat and on the top gifters, in
English, Spanish and Arabic (right to left); their profile shows the level, the coins to the
next and the creator they support most, and nothing of it once they hide it. No console
errors."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import httpx
import pytest
from browser import chromium, collect_errors, log_in, screenshot
from liveclient import go_live, named_person
from playwright.async_api import expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl
from giftwave.social.levels import Curve

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
DESKTOP = {"width": 1366, "height": 768}
CURVE = Curve.configured(())
TITLE = {"en": "Level {n}", "es": "Nivel {n}", "ar": "المستوى {n}"}
pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("web-levels")) as proc:
        yield proc


async def _gifted_fan(http: httpx.AsyncClient) -> tuple[int, str, str, str, int]:
    """A live creator's stream and a fan who gave it 100 coins: (fan id, their handle, the
    stream, the creator's handle, the fan's level) once the level is computed."""
    _, creator_token, creator = await named_person(http, "creator")
    stream = await go_live(http, creator_token, "Level night")
    fan_id, fan_token, fan = await named_person(http, "viewer")
    r = await http.post(
        f"/v1/admin/users/{fan_id}/coins",
        json={"coins": 500, "idempotency_key": f"grant-{fan_id}"},
        headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"/v1/streams/{stream}/gifts",
        json={"gift_id": "hand_hearts", "count": 1, "idempotency_key": "k1"},
        headers={"Authorization": f"Bearer {fan_token}"},
    )
    assert r.status_code == 201, r.text
    for _ in range(100):  # the levels loop runs about once a second
        level = (await http.get(f"/v1/users/{fan_id}/level")).json()["level"]
        if level:
            return fan_id, fan, stream, creator, int(level)
        await asyncio.sleep(0.1)
    raise AssertionError("the level was never computed")


async def test_the_level_badge_is_beside_the_handle_in_chat(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, fan, stream, _, level = await _gifted_fan(http)
        assert level == CURVE.level(100)
        for locale in ("en", "es", "ar"):
            page = await log_in(
                browser, base, fan, PASSWORD, f"/live/{stream}", viewport=DESKTOP, locale=locale
            )
            errors = collect_errors(page)
            await page.wait_for_selector("body[data-connected='1']", state="attached")
            assert await page.get_attribute("html", "dir") == ("rtl" if locale == "ar" else "ltr")
            text = f"hola {locale}"
            await page.fill("#chat-text", text)
            await page.press("#chat-text", "Enter")
            line = page.locator("#chat-log li", has_text=text)
            badge = line.locator(".level-badge")
            await expect(badge).to_have_text(str(level))
            await expect(badge).to_have_attribute("title", TITLE[locale].format(n=level))
            # beside the handle: the badge, then the handle, on one line
            assert await line.locator(".level-badge + .who").inner_text() == fan
            mine = page.locator("#leaderboard li[data-user] .level-badge")
            await expect(mine.first).to_have_text(str(level))
            await screenshot(page, f"levels-chat-{locale}")
            assert errors == [], errors
            await page.context.close()


async def test_the_profile_shows_the_level_until_it_is_hidden(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, fan, _, creator, level = await _gifted_fan(http)
        page = await log_in(browser, base, fan, PASSWORD, f"/@{fan}", viewport=DESKTOP, locale="en")
        errors = collect_errors(page)
        section = page.locator("#level")
        await expect(section.locator(".level-badge")).to_have_text(str(level))
        to_go = CURVE.threshold(level + 1) - 100
        await expect(page.locator("#level-next")).to_have_text(
            f"{to_go} coins to level {level + 1}"
        )
        await expect(page.locator("#supported li")).to_have_text([f"@{creator} 100 coins"])
        other = await (await browser.new_context(viewport=DESKTOP, locale="ar")).new_page()
        await other.goto(f"{base}/@{fan}")
        await expect(other.locator("#level .level-badge")).to_have_text(str(level))

        await page.click("#level-hide")
        await expect(page.locator("#level-visibility")).to_have_text("Only you see your level.")
        await other.reload()
        await expect(other.locator("#clips")).to_be_visible()
        assert await other.locator("#level").count() == 0
        await screenshot(page, "levels-profile-hidden-own")
        assert errors == [], errors
