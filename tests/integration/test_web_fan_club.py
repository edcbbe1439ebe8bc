"""Fan clubs on the pages, in Debian's Chromium against a real server, in English, Spanish and
Arabic (right to left): the creator names a club and keeps chat for members in the studio; a
viewer who is not a member is refused with a clear message in their language and their line
stays in the box; a member's line shows with the club's badge; the studio lists the member
and removes them. No console errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import chromium, collect_errors, log_in, screenshot
from liveclient import go_live, named_person
from playwright.async_api import expect
from serverproc import ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

REFUSED = {
    "en": "Only fan club members can chat here: join the club to chat",
    "es": "Solo los miembros del club de fans pueden chatear aquí: únete al club para chatear",
    "ar": "يمكن لأعضاء نادي المعجبين فقط الدردشة هنا: انضم إلى النادي للدردشة",
}
CLUB_NAME = {"en": "Night Owls", "es": "Búhos", "ar": "بومات الليل"}
PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("web-clubs")) as proc:
        yield proc


@pytest.mark.parametrize("lang", ["en", "es", "ar"])
async def test_members_only_chat_refuses_a_non_member(server: ServerProcess, lang: str) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        creator_id, creator_token, creator = await named_person(http, "creator")
        _, _, outsider = await named_person(http, "viewer")
        fan_id, fan_token, fan = await named_person(http, "viewer")
        stream = await go_live(http, creator_token, "Club night")
        room = f"/live/{stream}"

        # The creator names the club and keeps chat for members, in the studio.
        studio = await log_in(browser, base, creator, PASSWORD, "/studio/club", locale=lang)
        errors = collect_errors(studio)
        assert await studio.get_attribute("html", "lang") == lang
        assert await studio.get_attribute("html", "dir") == ("rtl" if lang == "ar" else "ltr")
        # Without a club the chat mode is there already; only its club modes wait for one.
        await expect(studio.locator("#club-chat")).to_be_visible()
        await expect(studio.locator("#club-chat-mode option[value=members]")).to_be_disabled()
        await expect(studio.locator("#club-chat-mode option[value=subscribers]")).to_be_enabled()
        await studio.fill("#club-name-input", CLUB_NAME[lang])
        await studio.click("#club-name button[type=submit]")
        await expect(studio.locator("#club-chat-mode option[value=members]")).to_be_enabled(
            timeout=10_000
        )
        await studio.select_option("#club-chat-mode", "members")
        await studio.click("#club-chat button[type=submit]")
        await expect(studio.locator(".toast").last).to_be_visible()
        club = (await http.get(f"/v1/creators/{creator_id}/club")).json()
        assert club["name"] == CLUB_NAME[lang]
        assert club["chat_mode"] == "members"

        r = await http.post(
            f"/v1/creators/{creator_id}/club/members",
            json={},
            headers={"Authorization": f"Bearer {fan_token}"},
        )
        assert r.status_code == 201, r.text

        viewer = await log_in(browser, base, outsider, PASSWORD, room, locale=lang)
        member = await log_in(browser, base, fan, PASSWORD, room, locale=lang)
        errors.watch(viewer)
        errors.watch(member)
        for page in (viewer, member):
            await page.wait_for_selector(
                "body[data-connected='1']", state="attached", timeout=10_000
            )

        # A non-member's line is refused, said in their language; the text stays to edit.
        await viewer.fill("#chat-text", "let me in")
        await viewer.press("#chat-text", "Enter")
        await expect(viewer.locator(".toast").last).to_have_text(REFUSED[lang], timeout=10_000)
        assert await viewer.input_value("#chat-text") == "let me in"
        await screenshot(viewer, f"fan-club-members-only-{lang}")

        # A member's line goes, with the club's badge, for everyone in the room.
        await member.fill("#chat-text", "hello owls")
        await member.press("#chat-text", "Enter")
        line = viewer.locator("#chat-log li", has_text="hello owls")
        await expect(line).to_be_visible(timeout=10_000)
        await expect(line.locator(".club-badge")).to_contain_text(CLUB_NAME[lang])
        await expect(viewer.locator("#chat-log li", has_text="let me in")).to_have_count(0)

        # The studio lists the member with their points and level, and removes them.
        await studio.reload()
        row = studio.locator(f"tr[data-user='{fan_id}']")
        await expect(row).to_be_visible()
        await expect(row).to_contain_text(fan)
        await row.locator(".club-remove").click()
        await expect(row).to_have_count(0, timeout=10_000)
        gone = await http.get(
            f"/v1/creators/{creator_id}/club/members/me",
            headers={"Authorization": f"Bearer {fan_token}"},
        )
        assert gone.status_code == 404
        assert errors == []
