"""Finding people and their clips, following them, becoming a creator: in Chromium against one
real server, on a desktop, a 360x740 phone and in Arabic (#18 items 9 and 19).

- Clips can be found: the room's "Clips" by the host's name leads to the creator's profile
  (``/@handle``), which lists their published clips (not one still being made) and says they
  are live with the way in; a clip's "by @…" leads back; the studio has a Clips tab and a link
  to the profile. An unknown handle is the 404 page. Follow on the profile counts at once.
- Following changes the home page: who you follow that is live (to the room), the others
  smaller (to their profiles).
- A viewer finds the studio in the header; its page turns them into a creator in one click
  (the go-live form follows); a minor is told from what age instead, in Arabic too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from clipfiles import make_video
from liveclient import go_live, person
from playwright.async_api import Browser, BrowserContext, Page, expect
from serverproc import ServerProcess, one_server

from giftwave.clips.library import ClipSource, ClipStatus, insert_clip
from giftwave.db.engine import make_engine
from giftwave.db.urls import DatabaseUrl

pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)

PASSWORD = "pw-pw-pw-pw"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
CLIP_TITLE = "Best rose rain"
CLIP_WAIT_S = 30.0


@dataclass(frozen=True, slots=True)
class Site:
    server: ServerProcess
    luna: str  # a live creator with a clip
    sol: str  # a creator who is not live
    stream_id: str
    clip_id: str
    fans: tuple[str, ...]  # viewers, one per test
    minor: str


async def _handle(http: httpx.AsyncClient, token: str) -> str:
    me = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return str(me.json()["handle"])


async def _ready_clip(http: httpx.AsyncClient, token: str, tmp: Path) -> str:
    auth = {"Authorization": f"Bearer {token}"}
    video = make_video(tmp / "tiny.mp4", seconds=1, size="160x120", audio=False)
    with video.open("rb") as f:
        r = await http.post(
            "/v1/clips",
            files={"title": (None, CLIP_TITLE), "file": ("tiny.mp4", f, "video/mp4")},
            headers=auth,
        )
    assert r.status_code in (201, 202), r.text
    clip_id = str(r.json()["id"])
    for _ in range(int(CLIP_WAIT_S / 0.2)):
        if (await http.get(f"/v1/clips/{clip_id}", headers=auth)).json()["status"] == "ready":
            return clip_id
        await asyncio.sleep(0.2)
    raise AssertionError("the clip never became ready")


async def _build(server: ServerProcess, db: DatabaseUrl, tmp: Path) -> Site:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        luna_id, luna = await person(http, "creator")
        _, sol = await person(http, "creator")
        stream_id = await go_live(http, luna, "Rooftop roses")
        clip_id = await _ready_clip(http, luna, tmp)
        fans = [(await person(http, "viewer"))[1] for _ in range(3)]
        today = date.today()
        fifteen = today.replace(year=today.year - 15, day=min(today.day, 28))
        r = await http.post(
            "/v1/auth/register",
            json={
                "handle": "young_fan",
                "email": "young@web.test",
                "password": PASSWORD,
                "birth_date": fifteen.isoformat(),
                "country": "US",
            },
        )
        assert r.status_code == 201, r.text
        site = Site(
            server,
            await _handle(http, luna),
            await _handle(http, sol),
            stream_id,
            clip_id,
            tuple([await _handle(http, f) for f in fans]),
            "young_fan",
        )
    # One being made: the profile does not list it (only the creator's studio does).
    engine = make_engine(db)
    with engine.begin() as conn:
        insert_clip(
            conn,
            "cl_cooking00001",
            luna_id,
            "Still cooking",
            ClipSource.UPLOAD,
            ClipStatus.PROCESSING,
            "video/mp4",
        )
    engine.dispose()
    return site


@pytest.fixture(scope="module")
def site(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    tmp = tmp_path_factory.mktemp("profiles")
    env = {
        "GIFTWAVE_CLIP_STORE": f"file://{tmp}/store",
        "GIFTWAVE_CLIP_TMP_DIR": str(tmp / "clips"),
    }
    with one_server(module_bare_db_url, tmp, **env) as server:
        yield asyncio.run(_build(server, module_bare_db_url, tmp))


async def _as(
    browser: Browser, site: Site, handle: str | None, viewport: dict[str, int], locale: str = "en"
) -> tuple[BrowserContext, Page, list[str]]:
    context = await browser.new_context(viewport=viewport, locale=locale)
    if handle is not None:
        login = {"login": handle, "password": PASSWORD}
        r = await context.request.post(f"{site.server.base_url}/v1/auth/login", data=login)
        assert r.ok, await r.text()
    page = await context.new_page()
    return context, page, collect_errors(page)


async def _fits(page: Page, viewport: dict[str, int]) -> None:
    assert await page.evaluate("document.documentElement.scrollWidth") <= viewport["width"]


async def test_clips_are_found_from_the_room_the_clip_and_the_studio(site: Site) -> None:
    base = site.server.base_url
    async with chromium() as browser:
        context, page, errors = await _as(browser, site, site.fans[0], DESKTOP)
        await page.goto(f"{base}/live/{site.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
        await expect(page.locator(".host-name")).to_have_attribute("href", f"/@{site.luna}")
        await page.locator("#host-clips").click()
        await page.wait_for_url(f"{base}/@{site.luna}#clips")
        await expect(page.locator("h1.profile-handle")).to_have_text(f"@{site.luna}")
        await expect(page.locator("#profile-live")).to_have_attribute(
            "href", f"/live/{site.stream_id}"
        )
        clips = page.locator("#clips .clip-card")
        await expect(clips).to_have_count(1)  # not the one still being made
        await expect(clips.first).to_contain_text(CLIP_TITLE)
        await expect(page.locator("#followers")).to_have_text("0 followers")
        await page.locator("#follow").click()
        await expect(page.locator("#follow")).to_have_attribute("aria-pressed", "true")
        await expect(page.locator("#followers")).to_have_text("1 follower")
        await screenshot(page, "profile-desktop")

        await clips.first.click()
        await page.wait_for_url(f"{base}/clips/{site.clip_id}")
        await page.locator(f".clip-info a[href='/@{site.luna}']").click()
        await page.wait_for_url(f"{base}/@{site.luna}")
        await page.locator("#follow").click()  # unfollow: the count follows
        await expect(page.locator("#followers")).to_have_text("0 followers")

        missing = await page.goto(f"{base}/@nobody_at_all")
        assert missing is not None
        assert missing.status == 404
        await expect(page.locator("h1")).to_have_text("There is no such page")
        assert errors == [
            "Failed to load resource: the server responded with a status of 404 (Not Found)"
        ]
        await context.close()

        # The creator: the studio's Clips tab, and their profile.
        context, page, errors = await _as(browser, site, site.luna, DESKTOP)
        await page.goto(f"{base}/studio")
        await page.locator(".studio-tabs a[href='/studio/clips']").click()
        await page.wait_for_url(f"{base}/studio/clips")
        await expect(page.locator(".studio-tabs a[aria-current='page']")).to_have_text("Clips")
        await page.locator(f".studio-tabs a[href='/@{site.luna}']").click()
        await expect(page.locator("#clips a[href='/studio/clips']")).to_be_visible()
        assert errors == []
        await context.close()

        # A phone and Arabic: the profile fits, mirrored.
        for viewport, locale, name in ((PHONE, "en", "phone"), (PHONE, "ar", "arabic-phone")):
            context, page, errors = await _as(browser, site, None, viewport, locale)
            await page.goto(f"{base}/@{site.luna}")
            await expect(page.locator("#clips .clip-card")).to_have_count(1)
            await _fits(page, viewport)
            if locale == "ar":
                await expect(page.locator("#clips-h")).to_have_text("المقاطع")
                head = await page.locator(".profile-head .initial").bounding_box()
                assert head is not None
                assert head["x"] > viewport["width"] / 2  # starts on the right
            await screenshot(page, f"profile-{name}")
            assert errors == []
            await context.close()


async def test_home_shows_who_you_follow_live_first(site: Site) -> None:
    base = site.server.base_url
    async with chromium() as browser:
        context, page, errors = await _as(browser, site, site.fans[1], DESKTOP)
        await page.goto(f"{base}/")
        await expect(page.locator("#following")).to_have_count(0)  # follows nobody yet
        for handle in (site.luna, site.sol):
            await page.goto(f"{base}/@{handle}")
            await page.locator("#follow").click()
            await expect(page.locator("#follow")).to_have_attribute("aria-pressed", "true")
        await page.goto(f"{base}/")
        following = page.locator("#following")
        await expect(following).to_be_visible()
        live = following.locator(".following-live a")
        await expect(live).to_have_count(1)
        await expect(live).to_have_attribute("href", f"/live/{site.stream_id}")
        await expect(live).to_contain_text(f"@{site.luna}")
        offline = following.locator(".following-offline a")
        await expect(offline).to_have_count(1)
        await expect(offline).to_have_attribute("href", f"/@{site.sol}")
        # The offline ones are smaller than the live ones.
        live_box, off_box = await live.bounding_box(), await offline.bounding_box()
        assert live_box is not None
        assert off_box is not None
        assert off_box["height"] < live_box["height"]
        await screenshot(page, "home-following-desktop")
        await live.click()
        await page.wait_for_url(f"{base}/live/{site.stream_id}")
        assert errors == []
        await context.close()

        for locale, name in (("en", "phone"), ("ar", "arabic-phone")):
            context, page, errors = await _as(browser, site, site.fans[1], PHONE, locale)
            await page.goto(f"{base}/")
            await expect(page.locator("#following .following-live a")).to_have_count(1)
            await _fits(page, PHONE)
            if locale == "ar":
                await expect(page.locator("#following-h")).to_have_text("تتابعه")
            await screenshot(page, f"home-following-{name}")
            assert errors == []
            await context.close()


async def test_a_viewer_becomes_a_creator_from_the_studio_link(site: Site) -> None:
    base = site.server.base_url
    forbidden = "Failed to load resource: the server responded with a status of 403 (Forbidden)"
    async with chromium() as browser:
        context, page, errors = await _as(browser, site, site.fans[2], PHONE)
        await page.goto(f"{base}/")
        await page.locator("header.site nav a[href='/studio']").click()
        await page.wait_for_url(f"{base}/studio")
        await expect(page.locator("h1")).to_have_text("The studio is for creators")
        await _fits(page, PHONE)
        await screenshot(page, "become-creator-phone")
        await page.locator("#become-creator").click()
        await expect(page.locator("#go-live-form")).to_be_visible(timeout=10_000)
        assert errors == [forbidden]  # the studio's own 403, before
        await context.close()

        # A minor: told from what age, in their language; no button.
        context, page, errors = await _as(browser, site, site.minor, PHONE, "ar")
        response = await page.goto(f"{base}/studio")
        assert response is not None
        assert response.status == 403
        await expect(page.locator("#become-refused")).to_have_text(
            "يمكنك أن تصبح صانع محتوى بدءًا من سن 18."
        )
        await expect(page.locator("#become-creator")).to_have_count(0)
        await _fits(page, PHONE)
        await screenshot(page, "become-creator-minor-arabic")
        assert errors == [forbidden]
        await context.close()
