"""Moderation on the pages, in Debian's Chromium against a real server (#18 item 2): the studio
shows the room's chat; the creator deletes a line there and it goes for a viewer; a viewer
reports a line from its menu and the studio lists the report, whose Ban refuses the author's
next line; a moderator the creator appointed mutes from the room with the keyboard alone. The
line menu stays inside the window on a phone and in Arabic (right to left). No console errors.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser import chromium, collect_errors, log_in, screenshot
from liveclient import go_live, named_person
from playwright.async_api import Browser, Page, expect
from serverproc import ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("web-moderation")) as proc:
        yield proc


async def _log_in(browser: Browser, base: str, handle: str, to: str, **context: Any) -> Page:
    page = await log_in(browser, base, handle, PASSWORD, to, **context)
    await page.wait_for_selector("body[data-connected='1']", state="attached", timeout=10_000)
    return page


async def _say(page: Page, text: str) -> None:
    await page.fill("#chat-text", text)
    await page.press("#chat-text", "Enter")


def _line(page: Page, text: str) -> Any:
    return page.locator("#chat-log li", has_text=text)


async def _inside(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    assert box is not None
    size = page.viewport_size
    assert size is not None
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= size["width"], (box, size)
    assert box["y"] + box["height"] <= size["height"], (box, size)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= size["width"], f"{page.url} is {width}px wide"


async def test_the_studio_deletes_bans_and_lists_reports(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        creator_id, creator_token, creator = await named_person(http, "creator")
        _, _, troll = await named_person(http, "viewer")
        _, _, fan = await named_person(http, "viewer")
        stream = await go_live(http, creator_token, "Moderated night")
        room = f"/live/{stream}"

        studio = await _log_in(browser, base, creator, "/studio", viewport=DESKTOP)
        bad = await _log_in(browser, base, troll, room, viewport=DESKTOP)
        good = await _log_in(browser, base, fan, room, viewport=DESKTOP)
        errors = collect_errors(studio, bad, good)

        # The studio shows the room's chat; the creator deletes a line there.
        await _say(bad, "buy followers at spam.example")
        line = _line(studio, "buy followers")
        await expect(line).to_be_visible(timeout=10_000)
        await line.locator(".line-actions").click()
        menu = studio.locator(".line-menu")
        await expect(menu.locator("[role=menuitem]")).to_have_count(5)  # delete, 3 mutes, ban
        await screenshot(studio, "moderation-studio-menu")
        await menu.locator("[data-action=delete]").click()
        for page in (good, bad):  # gone for everyone in the room
            await expect(_line(page, "buy followers")).to_have_count(0, timeout=10_000)
            await expect(page.locator("#chat-log li.deleted")).to_have_count(1)

        # A viewer reports the next line from its menu: Report only, never moderation.
        await _say(bad, "everyone here is an idiot")
        line = _line(good, "an idiot")
        await expect(line).to_be_visible(timeout=10_000)
        await line.locator(".line-actions").click()
        items = good.locator(".line-menu [role=menuitem]")
        await expect(items).to_have_count(4)
        assert await good.locator(".line-menu [data-action=ban]").count() == 0
        await good.locator(".line-menu [data-action='report:harassment']").click()
        await expect(good.locator(".toast").last).to_have_text(
            "Thank you: the moderators will look at it"
        )
        own = _line(bad, "an idiot")  # one's own line: nothing to do with it
        await expect(own.locator(".line-actions")).to_have_count(0)

        # The studio lists the report; its Ban refuses the author's next line.
        await studio.reload()
        report = studio.locator("#reports li", has_text="an idiot")
        await expect(report).to_be_visible(timeout=10_000)
        await expect(report.locator(".reason")).to_contain_text(f"Harassment · @{fan}")
        await report.locator("button").click()
        await expect(studio.locator("#bans li", has_text=troll)).to_be_visible(timeout=10_000)
        await _say(bad, "let me back in")
        await expect(bad.locator(".toast.error").last).to_have_text(
            "The creator banned you from their rooms", timeout=10_000
        )
        await expect(_line(good, "let me back in")).to_have_count(0)
        await screenshot(studio, "moderation-studio-reports")
        r = await http.get(
            f"/v1/creators/{creator_id}/bans", headers={"Authorization": f"Bearer {creator_token}"}
        )
        assert [b["handle"] for b in r.json()["bans"]] == [troll]

        # Unbanned from the studio: they may chat again.
        await studio.locator("#bans li", has_text=troll).locator("button").click()
        await expect(studio.locator("#bans li")).to_have_count(0, timeout=10_000)
        await _say(bad, "sorry about that")
        await expect(_line(good, "sorry about that")).to_be_visible(timeout=10_000)
        assert errors == []


async def test_a_moderator_mutes_with_the_keyboard_on_a_phone_and_in_arabic(
    server: ServerProcess,
) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, creator_token, _ = await named_person(http, "creator")
        mod_id, _, mod = await named_person(http, "viewer")
        _, _, talker = await named_person(http, "viewer")
        stream = await go_live(http, creator_token, "Team night")
        room = f"/live/{stream}"
        r = await http.post(
            "/v1/me/moderators",
            json={"user_id": mod_id},
            headers={"Authorization": f"Bearer {creator_token}"},
        )
        assert r.status_code == 201, r.text

        moderator = await _log_in(browser, base, mod, room, viewport=PHONE)
        speaker = await _log_in(browser, base, talker, room, viewport=PHONE, locale="ar")
        errors = collect_errors(moderator, speaker)
        assert await speaker.get_attribute("html", "dir") == "rtl"

        await _say(speaker, "مرحبا " + "ب" * 60)
        line = _line(moderator, "مرحبا")
        await expect(line.locator(".line-actions")).to_be_visible(timeout=10_000)
        # Keyboard only: to the line's button, open, down to "Mute for 5 minutes", Enter.
        await line.locator(".line-actions").focus()
        await moderator.keyboard.press("Enter")
        menu = moderator.locator(".line-menu")
        await expect(menu.locator("[role=menuitem]").first).to_be_focused()
        await _inside(moderator, ".line-menu")
        await screenshot(moderator, "moderation-phone-menu")
        await moderator.keyboard.press("ArrowDown")
        await expect(menu.locator("[data-action='mute:5']")).to_be_focused()
        await moderator.keyboard.press("Escape")  # closes, and gives the focus back
        await expect(menu).to_have_count(0)
        await expect(line.locator(".line-actions")).to_be_focused()
        await moderator.keyboard.press("ArrowDown")  # opens on the first item again
        await moderator.keyboard.press("ArrowDown")
        await moderator.keyboard.press("Enter")
        await expect(moderator.locator(".toast").last).to_have_text(f"{talker} is muted")
        await _say(speaker, "هل تسمعني؟")
        await expect(speaker.locator(".toast.error").last).to_have_text("أنت مكتوم", timeout=10_000)

        # In Arabic the viewer's menu opens inside the window too, and is translated.
        await _say(moderator, "welcome everyone")
        other = _line(speaker, "welcome everyone")
        await other.locator(".line-actions").click()
        await expect(speaker.locator(".line-menu [data-action='report:spam']")).to_have_text(
            "الإبلاغ عن رسالة مزعجة"
        )
        await _inside(speaker, ".line-menu")
        await screenshot(speaker, "moderation-phone-menu-ar")
        assert errors == []
