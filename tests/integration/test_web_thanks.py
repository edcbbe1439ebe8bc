"""Thanks in Debian's Chromium against a real server, in English, Spanish and Arabic (right to
left): a creator ends their stream in the studio, sees its top supporters with their coins,
sends a thank-you to the first of them only; the studio says it was sent, the chosen
supporter's profile shows "Thanked by @creator for <title>" with the message, the other's does
not; the creator's next room shows it at the top of the chat. No console errors."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from browser import chromium, collect_errors, log_in, screenshot
from liveclient import go_live, named_person
from playwright.async_api import expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
ADMIN = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
WORDS = {
    "en": ("Thank your supporters", "Thanked by", "Thanks to"),
    "es": ("Agradece a quienes te apoyaron", "Agradecimiento de", "Gracias a"),
    "ar": ("اشكر داعميك", "شكر من", "شكرًا لـ"),
}
pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def server(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("web-thanks")) as proc:
        yield proc


async def _gift(http: httpx.AsyncClient, token: str, user_id: int, stream: str, n: int) -> None:
    r = await http.post(
        f"/v1/admin/users/{user_id}/coins",
        json={"coins": 1_000, "idempotency_key": f"thanks-{user_id}"},
        headers=ADMIN,
    )
    assert r.status_code == 200, r.text
    r = await http.post(
        f"/v1/streams/{stream}/gifts",
        json={"gift_id": "rose", "count": n, "idempotency_key": f"t{user_id}"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("locale", ["en", "es", "ar"])
async def test_end_see_supporters_thank_and_the_profile_shows_it(
    server: ServerProcess, locale: str
) -> None:
    base = server.base_url
    heading, thanked_by, thanks_to = WORDS[locale]
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, creator_token, creator = await named_person(http, "creator")
        ana_id, ana_token, ana = await named_person(http, "viewer")
        bo_id, bo_token, bo = await named_person(http, "viewer")
        stream = await go_live(http, creator_token, f"Jazz night {locale}")
        await _gift(http, ana_token, ana_id, stream, 7)
        await _gift(http, bo_token, bo_id, stream, 3)

        studio = await log_in(browser, base, creator, PASSWORD, "/studio", locale=locale)
        errors = collect_errors(studio)
        assert await studio.get_attribute("html", "dir") == ("rtl" if locale == "ar" else "ltr")
        await studio.click("#end-stream")
        await studio.click("#end-confirm")
        panel = studio.locator("#thanks-panel")
        await expect(panel.locator("h2")).to_have_text(heading)
        rows = panel.locator("#supporters li")
        await expect(rows).to_have_count(2)
        await expect(rows.nth(0)).to_contain_text(ana)
        await expect(rows.nth(0).locator(".supporter-coins")).to_have_attribute("data-coins", "7")
        await rows.nth(1).locator("input").uncheck()  # only ana
        await panel.locator("textarea[name=message]").fill(f"Merci {locale}!")
        await screenshot(studio, f"studio-thanks-form-{locale}")
        await panel.locator("button[type=submit]").click()
        await expect(studio.locator("#thanks-sent")).to_contain_text(f"Merci {locale}!")
        await expect(studio.locator("#thanks-sent")).to_contain_text(f"@{ana}")
        await screenshot(studio, f"studio-thanks-{locale}")

        profile = await (await browser.new_context(locale=locale)).new_page()
        errors.watch(profile)
        await profile.goto(f"{base}/@{ana}")
        item = profile.locator("#thanks .thanks-item")
        await expect(item).to_contain_text(thanked_by)
        await expect(item).to_contain_text(f"@{creator}")
        await expect(item).to_contain_text(f"Jazz night {locale}")
        await expect(item.locator(".thanks-message")).to_have_text(f"Merci {locale}!")
        await screenshot(profile, f"profile-thanks-{locale}")
        await profile.goto(f"{base}/@{bo}")
        await expect(profile.locator("#clips")).to_be_visible()
        assert await profile.locator("#thanks").count() == 0

        following = await go_live(http, creator_token, "Next night")
        await profile.goto(f"{base}/live/{following}")
        line = profile.locator(".chat-log .thanks-line")
        await expect(line).to_contain_text(thanks_to)
        await expect(line).to_contain_text(ana)
        await expect(line.locator(".thanks-words")).to_have_text(f"Merci {locale}!")
        await screenshot(profile, f"room-thanks-{locale}")
        assert errors == [], errors
