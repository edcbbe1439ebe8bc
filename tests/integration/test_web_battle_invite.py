"""Battle invitations that cannot be missed, and results that do not stay for ever, in Debian's
Chromium against a real server (#18 item 5). The invited creator's studio shows a toast at the
top of the window (not below the fold), the tab's title changes, and, once the creator turned
the sound on (off by default, remembered), a short tone is played; Accept in the toast starts
the battle. Its result then shows on both rooms, the studio and the overlay, and goes after
GIFTWAVE_BATTLE_RESULT_SHOWN_S. On a phone in Arabic the toast sits at the top too.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from liveclient import go_live, person
from playwright.async_api import Browser, Page, expect
from serverproc import ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
BATTLE_S = 2
RESULT_SHOWN_S = 3
# Counts the oscillators the page starts: the tone is generated, never a file.
COUNT_TONES = """
window.__tones = 0;
const Real = window.AudioContext;
window.AudioContext = class extends Real {
  createOscillator() {
    const osc = super.createOscillator();
    const start = osc.start.bind(osc);
    osc.start = (...args) => { window.__tones += 1; return start(...args); };
    return osc;
  }
};
"""
pytestmark = pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)


@pytest.fixture
def server(bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with one_server(
        bare_db_url,
        tmp_path_factory.mktemp("battle-invite"),
        GIFTWAVE_BATTLE_MIN_DURATION_S=str(BATTLE_S),
        GIFTWAVE_BATTLE_RESULT_SHOWN_S=str(RESULT_SHOWN_S),
    ) as proc:
        yield proc


async def _log_in(browser: Browser, base: str, handle: str, **context: Any) -> Page:
    ctx = await browser.new_context(**context)
    await ctx.add_init_script(COUNT_TONES)
    page = await ctx.new_page()
    await page.goto(f"{base}/login?next=/studio")
    await page.fill("input[name=login]", handle)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}/studio")
    await page.wait_for_selector("body[data-connected='1']", state="attached", timeout=10_000)
    return page


async def _at_the_top(page: Page) -> None:
    toast = page.locator("#battle-toast")
    await expect(toast).to_be_visible(timeout=10_000)
    box = await toast.bounding_box()
    size = page.viewport_size
    assert box is not None
    assert size is not None
    assert box["y"] < 40, box  # at the top of the window, whatever was scrolled
    assert box["x"] >= 0, box
    assert box["x"] + box["width"] <= size["width"], (box, size)


async def test_an_invitation_cannot_be_missed_and_the_result_goes(server: ServerProcess) -> None:
    base = server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
        _, ana_token = await person(http, "creator")
        _, bo_token = await person(http, "creator")
        bo = (await http.get("/v1/me", headers={"Authorization": f"Bearer {bo_token}"})).json()
        ana = {"Authorization": f"Bearer {ana_token}"}
        stream_a = await go_live(http, ana_token, "Ana sings")
        stream_b = await go_live(http, bo_token, "Bo plays")
        overlay_url = (await http.get("/v1/creators/me/overlay", headers=ana)).json()["url"]

        studio = await _log_in(browser, base, bo["handle"], viewport=DESKTOP)
        phone = await _log_in(browser, base, bo["handle"], viewport=PHONE, locale="ar")
        viewer = await (await browser.new_context(viewport=DESKTOP)).new_page()
        await viewer.goto(f"{base}/live/{stream_a}")
        overlay = await (
            await browser.new_context(viewport={"width": 1280, "height": 720})
        ).new_page()
        await overlay.goto(overlay_url.replace("http://localhost", base))
        errors = collect_errors(studio, phone, viewer, overlay)

        # The sound is off until the creator turns it on; the choice is remembered.
        sound = studio.locator("#battle-sound")
        await expect(sound).not_to_be_checked()
        await sound.check()
        await studio.reload()
        await studio.wait_for_selector("body[data-connected='1']", state="attached")
        await expect(studio.locator("#battle-sound")).to_be_checked()
        title = await studio.title()
        await studio.mouse.wheel(0, 5000)  # scrolled away from the battle panel, or not

        r = await http.post(
            "/v1/battles",
            json={"stream_id": stream_a, "opponent_stream_id": stream_b, "duration_s": BATTLE_S},
            headers=ana,
        )
        assert r.status_code == 201, r.text
        await _at_the_top(studio)
        await _at_the_top(phone)
        await expect(studio.locator("#battle-toast-text")).to_contain_text("challenges you")
        await expect(phone.locator("#battle-toast-accept")).to_have_text("قبول")
        await expect(studio).to_have_title("⚔ Battle invitation")
        assert await studio.evaluate("window.__tones") >= 3  # the tone, on
        assert await phone.evaluate("window.__tones") == 0  # this browser never turned it on
        await studio.wait_for_timeout(500)  # the toast's slide-in, for the picture
        await screenshot(studio, "battle-invitation-toast")
        await screenshot(phone, "battle-invitation-toast-phone-ar")

        await studio.click("#battle-toast-accept")
        await expect(studio.locator("#battle-toast")).to_be_hidden(timeout=10_000)
        await expect(phone.locator("#battle-toast")).to_be_hidden(timeout=10_000)
        await expect(studio).to_have_title(title)

        # The result shows on both rooms, the studio and the overlay, then goes.
        timer = ".battle-timer"
        for page in (viewer, overlay, studio):
            await expect(page.locator(timer)).to_have_text("Draw", timeout=20_000)
        await screenshot(viewer, "battle-result-shown")
        for page in (viewer, overlay, studio):
            await expect(page.locator("#battle")).to_be_hidden(timeout=(RESULT_SHOWN_S + 3) * 1000)
        await viewer.reload()  # a newcomer: no old result either
        await viewer.wait_for_selector("body[data-connected='1']", state="attached")
        await expect(viewer.locator("#battle")).to_be_hidden()
        assert errors == []
