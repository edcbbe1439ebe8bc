"""The room's layout and text in a real browser (Debian's Chromium), issue #18.

One server for the module, with a room built to break layouts: a creator and a gifter with the
longest handles allowed, a stream title, a goal title and a clip title each one unbroken word
as long as the API takes, a 150-character word in the chat, and an Arabic line beside it.
On a desktop, a phone and in Arabic no page grows wider than the screen, and the board and
Send stay on it. On a phone the room fills the screen: video behind, chat and gift alerts over
it, bottom left, never over the host, Follow, the goal, the battle bar or the likes; the tray
is a sheet opened by a Gift button. An ended stream says "Ended" everywhere, with no red dot;
figures carry names; a reached goal stays marked as reached; the placeholder's text and the
embed's animations leave the gift alerts alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
import websockets
from browser import chromium, collect_errors, screenshot, with_level
from clipfiles import make_video
from liveclient import Client, as_user
from playwright.async_api import Page, expect
from serverproc import ADMIN_TOKEN, ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

pytestmark = pytest.mark.parametrize("module_bare_db_url", ["sqlite"], indirect=True)

PASSWORD = "pw-pw-pw-pw"
DESKTOP = {"width": 1366, "height": 768}
PHONE = {"width": 360, "height": 740}
# Each the longest the API takes, in one unbroken word.
LONG_HANDLE_CHARS = 24
LONG_TITLE_CHARS = 140
LONG_GOAL_CHARS = 80
LONG_CHAT_CHARS = 150
ARABIC_LINE = "مرحبا بالجميع في البث"


@dataclass(frozen=True, slots=True)
class Room:
    server: ServerProcess
    stream_id: str
    other_stream_id: str
    clip_id: str
    creator: str  # handles
    gifter: str
    creator_auth: dict[str, str]
    gifter_auth: dict[str, str]
    other_auth: dict[str, str]


async def _register(http: httpx.AsyncClient, handle: str, role: str) -> tuple[int, dict[str, str]]:
    r = await http.post(
        "/v1/auth/register",
        json={
            "handle": handle,
            "email": f"{handle}@layout.test",
            "password": PASSWORD,
            "birth_date": "1990-01-01",
            "country": "US",
            "role": role,
        },
    )
    assert r.status_code == 201, r.text
    return int(r.json()["user"]["id"]), {"Authorization": f"Bearer {r.json()['token']}"}


async def _build_room(server: ServerProcess, tmp: Path) -> Room:
    creator = "c" * LONG_HANDLE_CHARS
    gifter = "g" * LONG_HANDLE_CHARS
    async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
        _, creator_auth = await _register(http, creator, "creator")
        gifter_id, gifter_auth = await _register(http, gifter, "viewer")
        _, other_auth = await _register(http, "rival", "creator")
        r = await http.post(
            "/v1/streams", json={"title": "W" * LONG_TITLE_CHARS}, headers=creator_auth
        )
        assert r.status_code == 201, r.text
        stream_id = str(r.json()["id"])
        r = await http.post("/v1/streams", json={"title": "Rival"}, headers=other_auth)
        assert r.status_code == 201, r.text
        other_stream_id = str(r.json()["id"])
        goal = {"kind": "coins", "target": 1000, "title": "G" * LONG_GOAL_CHARS}
        r = await http.put(f"/v1/streams/{stream_id}/goal", json=goal, headers=creator_auth)
        assert r.status_code == 200, r.text
        # A battle with the rival: the battle bar is on the stage throughout.
        challenge = {"stream_id": stream_id, "opponent_stream_id": other_stream_id}
        r = await http.post("/v1/battles", json=challenge, headers=creator_auth)
        assert r.status_code == 201, r.text
        r = await http.post(f"/v1/battles/{r.json()['id']}/accept", headers=other_auth)
        assert r.status_code == 200, r.text
        r = await http.post(
            f"/v1/admin/users/{gifter_id}/coins",
            json={"coins": 100_000, "idempotency_key": "layout"},
            headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
        )
        assert r.status_code == 200, r.text
        r = await http.post(
            f"/v1/streams/{stream_id}/gifts",
            json={"gift_id": "rose", "idempotency_key": "layout-rose"},
            headers=gifter_auth,
        )
        assert r.status_code == 201, r.text
        # The chat: one long word and an Arabic line, as the room replays them to newcomers.
        url = f"ws://127.0.0.1:{server.port}/v1/streams/{stream_id}/ws"
        token = gifter_auth["Authorization"].removeprefix("Bearer ")
        async with websockets.connect(await as_user(http, url, token)) as ws:
            client = Client(ws)
            for n, text in enumerate(["x" * LONG_CHAT_CHARS, ARABIC_LINE], start=1):
                ack = await client.command(id=n, cmd="chat", text=text)
                assert "error" not in ack, ack
        # A clip with the longest title.
        video = make_video(tmp / "tiny.mp4", seconds=1, size="160x120", audio=False)
        with video.open("rb") as f:
            r = await http.post(
                "/v1/clips",
                files={
                    "title": (None, "C" * LONG_TITLE_CHARS),
                    "file": ("tiny.mp4", f, "video/mp4"),
                },
                headers=creator_auth,
            )
        assert r.status_code in (201, 202), r.text
        clip_id = str(r.json()["id"])
    return Room(
        server,
        stream_id,
        other_stream_id,
        clip_id,
        creator,
        gifter,
        creator_auth,
        gifter_auth,
        other_auth,
    )


@pytest.fixture(scope="module")
def room(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Room]:
    tmp = tmp_path_factory.mktemp("layout")
    env = {
        "GIFTWAVE_CLIP_STORE": f"file://{tmp}/store",
        "GIFTWAVE_CLIP_TMP_DIR": str(tmp / "clips"),
    }
    with one_server(module_bare_db_url, tmp, **env) as server:
        yield asyncio.run(_build_room(server, tmp))


# Every piece of user text: where it is drawn, against the window and every box that clips it
# (a text cut off by a card or scrolled away in the chat is as lost as one off the screen).
# A title ending in an ellipsis on purpose is fine; the tray scrolls sideways by design.
_TEXT_OUTSIDE = """() => {
  const outside = [];
  for (const el of document.querySelectorAll("bdi, .user-text, h1, h2")) {
    if (!el.textContent.trim() || el.closest(".tray, .visually-hidden, [hidden]")) continue;
    if (!el.checkVisibility({ visibilityProperty: true })) continue;
    const range = document.createRange();
    range.selectNodeContents(el);
    const r = range.getBoundingClientRect();
    if (r.width === 0) continue;
    let boxes = [[0, innerWidth, "the window"]];
    for (let a = el.parentElement; a && boxes; a = a.parentElement) {
      const style = getComputedStyle(a);
      if (style.textOverflow === "ellipsis") boxes = null;
      else if (style.overflowX !== "visible") {
        const b = a.getBoundingClientRect();
        boxes.push([b.left, b.right, a.id || a.className || a.tagName]);
      }
    }
    for (const [left, right, name] of boxes || []) {
      if (r.left < left - 1 || r.right > right + 1) {
        const text = el.textContent.trim().slice(0, 16);
        outside.push(`${el.id || el.className || el.tagName} "${text}…"`
          + ` spans ${Math.round(r.left)}..${Math.round(r.right)}, outside ${name}`
          + ` ${Math.round(left)}..${Math.round(right)}`);
        break;
      }
    }
  }
  return outside;
}"""

_WIDTHS = """() => ({
  page: document.documentElement.scrollWidth,
  main: document.querySelector("main")?.scrollWidth ?? 0,
  mainBox: document.querySelector("main")?.clientWidth ?? 0,
  window: innerWidth,
})"""


async def _no_overflow(page: Page, where: str) -> None:
    widths = await page.evaluate(_WIDTHS)
    assert widths["page"] <= widths["window"], (where, widths)
    assert widths["main"] <= widths["mainBox"], (where, widths)
    assert await page.evaluate(_TEXT_OUTSIDE) == [], where


async def _on_screen_across(page: Page, selector: str) -> None:
    box = await page.locator(selector).bounding_box()
    width = await page.evaluate("innerWidth")
    assert box is not None, selector
    assert box["x"] >= 0, (selector, box)
    assert box["x"] + box["width"] <= width, (selector, box, width)


async def _log_in(page: Page, base: str, handle: str) -> None:
    r = await page.context.request.post(
        f"{base}/v1/auth/login", data={"login": handle, "password": PASSWORD}
    )
    assert r.ok, await r.text()


async def _send(room: Room, gift_id: str, key: str, stream_id: str | None = None) -> None:
    async with httpx.AsyncClient(base_url=room.server.base_url, timeout=30) as http:
        r = await http.post(
            f"/v1/streams/{stream_id or room.stream_id}/gifts",
            json={"gift_id": gift_id, "idempotency_key": key},
            headers=room.gifter_auth,
        )
        assert r.status_code == 201, r.text


# The Arabic phone's room is checked by the phone layout's test, in both languages.
VIEWS = {"desktop": (DESKTOP, "en"), "phone": (PHONE, "en"), "arabic": (DESKTOP, "ar")}


@pytest.mark.parametrize("view", VIEWS)
async def test_one_long_word_never_widens_a_page(room: Room, view: str) -> None:
    """150 characters without a space in the chat, the longest handles, titles, goal and clip
    title: every page stays as wide as the screen, every word on it, board and Send in sight."""
    viewport, locale = VIEWS[view]
    base = room.server.base_url
    async with chromium() as browser:
        context = await browser.new_context(viewport=viewport, locale=locale)
        page = await context.new_page()
        errors = collect_errors(page)
        await page.goto(f"{base}/live/{room.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
        # The two chat lines replayed; the gifter's "reached level 1" may come live beside
        # them (the level follower is about a second behind the gift, the page can be first).
        await expect(page.locator("#chat-log li:not(.level-up)")).to_have_count(2)
        await expect(page.locator("#leaderboard .who")).to_have_text(with_level(room.gifter))
        await expect(page.locator("#goal .goal-title")).to_have_text("G" * LONG_GOAL_CHARS)
        await _no_overflow(page, "room")
        await _on_screen_across(page, "#leaderboard")
        await _on_screen_across(page, "#chat-form button[type=submit]")
        await expect(page.locator("#chat-form button[type=submit]")).to_be_in_viewport()
        # The Arabic line isolated in its own direction, in a room of either direction.
        arabic = page.locator("#chat-log li .text").filter(has_text=ARABIC_LINE)
        assert await arabic.evaluate("el => el.matches(':dir(rtl)')")
        assert await page.locator("#goal .goal-title").evaluate("el => el.matches(':dir(ltr)')")
        await screenshot(page, f"room-long-words-{view}")
        for path in ("/", f"/embed/{room.stream_id}", f"/clips/{room.clip_id}"):
            await page.goto(base + path)
            await page.wait_for_load_state("networkidle")
            await _no_overflow(page, path)
        await _log_in(page, base, room.creator)
        await page.goto(f"{base}/studio")
        await expect(page.locator("#leaderboard .who")).to_have_text(
            with_level(room.gifter), timeout=10_000
        )
        await _no_overflow(page, "studio")
        assert errors == []
        await context.close()


async def test_the_overlay_breaks_long_words_over_the_video(room: Room) -> None:
    base = room.server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        r = await http.get("/v1/creators/me/overlay", headers=room.creator_auth)
        assert r.status_code == 200, r.text
        overlay_url = r.json()["url"]
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 1280, "height": 720})
        errors = collect_errors(page)
        await page.goto(overlay_url.replace(overlay_url.split("/overlay/")[0], base))
        await expect(page.locator("#goal .goal-title")).to_have_text("G" * LONG_GOAL_CHARS)
        await _send(room, "rose", "overlay-rose")
        await expect(page.locator("#lane li.alert")).not_to_have_count(0, timeout=10_000)
        await _no_overflow(page, "overlay")
        assert errors == []


def _overlap(a: dict[str, float], b: dict[str, float]) -> bool:
    return (
        a["x"] < b["x"] + b["width"]
        and b["x"] < a["x"] + a["width"]
        and a["y"] < b["y"] + b["height"]
        and b["y"] < a["y"] + a["height"]
    )


# Once the lane's animations are over, the boxes of the alerts drawn, all read at one instant:
# an alert may leave between two reads. An animation cancelled (a combo's counter bumping again,
# an alert leaving) rejects its `finished` with AbortError; it is over too, so settled is enough.
_RESTING_ALERTS = """async () => {
  const moving = () => document.getAnimations()
    .filter((a) => a.playState === "running" && a.effect?.target?.closest?.("#lane"));
  for (let round = 0; round < 20 && moving().length; round++) {
    await Promise.allSettled(moving().map((a) => a.finished));
  }
  return [...document.querySelectorAll("#lane li.alert:not(.clipped)")].map((li) => {
    const b = li.getBoundingClientRect();
    return { x: b.x, y: b.y, width: b.width, height: b.height };
  });
}"""


async def _visible_alerts(page: Page) -> list[dict[str, float]]:
    """Where the alerts rest, once they have slid in."""
    boxes: list[dict[str, float]] = await page.evaluate(_RESTING_ALERTS)
    return boxes


FIVE_GIFTS = ("rose", "tiktok", "gg", "ice_cream", "heart_me")


async def _send_five(room: Room, key: str, stream_id: str | None = None) -> None:
    """Five gifts of five kinds at once: five combos, as many alerts as the room shows."""
    await asyncio.gather(*(_send(room, gift, f"{key}-{gift}", stream_id) for gift in FIVE_GIFTS))


async def _fill_the_lane(room: Room, page: Page, key: str, stream_id: str | None = None) -> None:
    await _send_five(room, key, stream_id)
    await expect(page.locator("#lane li.alert")).to_have_count(5, timeout=10_000)


async def _no_alert_covers(page: Page, controls: tuple[str, ...]) -> list[dict[str, float]]:
    alerts = await _visible_alerts(page)
    for control in controls:
        box = await page.locator(control).bounding_box()
        assert box is not None, control
        for alert in alerts:
            assert not _overlap(alert, box), (control, box, alert)
    return alerts


CONTROLS = (
    ".host-name",
    "#follow",
    ".live-badge",
    ".viewer-count",
    "#goal",
    "#battle",
    "#like",
    "#gift-open",
    "#chat-form",
    "#chat-log",
)


@pytest.mark.parametrize("locale", ["en", "ar"])
async def test_the_phone_room_fills_the_screen_and_its_alerts_cover_no_control(
    room: Room, locale: str
) -> None:
    """At 360x740 the stage is the screen below the header, the video behind; five gift alerts
    sit bottom left over it without touching the host, Follow, the goal, the battle bar, the
    likes or the chat, also when they were already there as the page opened; the tray is a
    sheet the Gift button opens, and it sends."""
    base = room.server.base_url
    async with chromium() as browser:
        context = await browser.new_context(viewport=PHONE, locale=locale)
        page = await context.new_page()
        errors = collect_errors(page)
        await _log_in(page, base, room.gifter)
        # Five combos still open as the page opens: its snapshot draws their alerts before the
        # goal and battle bars, which then push the alerts' band down (the oldest alert stayed
        # drawn over the battle bar).
        await _send_five(room, f"phone-{locale}-before")
        await page.goto(f"{base}/live/{room.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", state="attached", timeout=10_000)
        await expect(page.locator("#battle")).to_be_visible()
        await expect(page.locator("#goal")).to_be_visible()
        await expect(page.locator("#lane li.alert")).to_have_count(5)
        await _no_alert_covers(page, CONTROLS)

        stage = await page.locator("#stage").bounding_box()
        assert stage is not None
        assert stage["height"] >= 0.6 * PHONE["height"], stage  # it was 192 px
        assert abs(stage["y"] + stage["height"] - PHONE["height"]) <= 1, stage  # down to the edge
        assert stage["width"] == PHONE["width"], stage

        # Closed, the sheet's gifts are out of reach; the Gift button opens it.
        rose = page.locator("#gift-sheet .gift-button[data-gift='rose']")
        await expect(rose).to_be_hidden()
        await expect(page.locator("#gift-open")).to_have_attribute("aria-expanded", "false")

        await _fill_the_lane(room, page, f"phone-{locale}")
        alerts = await _no_alert_covers(page, CONTROLS)
        assert len(alerts) >= 3, alerts
        await _no_overflow(page, "phone room")
        await screenshot(page, f"room-phone-lanes-{locale}")

        await page.locator("#gift-open").click()
        await expect(page.locator("#gift-open")).to_have_attribute("aria-expanded", "true")
        await expect(rose).to_be_in_viewport()
        await expect(rose).to_be_focused()
        await page.evaluate(
            "Promise.all(document.getAnimations()"
            ".filter((a) => a.effect?.target?.id === 'gift-sheet').map((a) => a.finished))"
        )
        sheet = await page.locator("#gift-sheet").bounding_box()
        assert sheet is not None
        for control in (".host-name", "#follow", "#goal", "#battle"):  # still in sight above it
            box = await page.locator(control).bounding_box()
            assert box is not None, control
            assert not _overlap(box, sheet), (control, box, sheet)
        wallet = await page.evaluate("fetch('/v1/me/wallet').then((r) => r.json())")
        balance = int(wallet["coins"])
        await rose.click()
        await expect(page.locator("#balance")).to_have_attribute(
            "data-balance", str(balance - 1), timeout=10_000
        )
        await expect(rose).to_be_visible()  # a combo goes on: the sheet stays
        await screenshot(page, f"room-phone-gift-sheet-{locale}")
        await page.keyboard.press("Escape")
        await expect(rose).to_be_hidden()
        await expect(page.locator("#gift-open")).to_be_focused()
        assert errors == []
        await context.close()


async def test_the_desktop_room_keeps_its_layout_and_the_placeholder_clears_the_alerts(
    room: Room,
) -> None:
    base = room.server.base_url
    async with chromium() as browser:
        page = await browser.new_page(viewport=DESKTOP)
        errors = collect_errors(page)
        await page.goto(f"{base}/live/{room.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", state="attached", timeout=10_000)
        stage = await page.locator("#stage").bounding_box()
        side = await page.locator("aside.side").bounding_box()
        assert stage is not None
        assert side is not None
        assert abs(stage["height"] - stage["width"] * 9 / 16) <= 2, stage  # 16:9, as it was
        assert side["x"] > stage["x"] + stage["width"]  # the board and chat beside it
        await expect(page.locator("#gift-open")).to_be_hidden()
        await expect(page.locator(".tray .gift-button[data-gift='rose']")).to_be_visible()

        await _fill_the_lane(room, page, "desktop")
        text = await page.locator("#placeholder-text").bounding_box()
        assert text is not None
        alerts = await _visible_alerts(page)
        assert len(alerts) == 5
        for control in ("#placeholder-text", *CONTROLS[:7]):
            box = await page.locator(control).bounding_box()
            assert box is not None, control
            for alert in alerts:
                assert not _overlap(alert, box), (control, box, alert)
        await screenshot(page, "room-desktop-lanes")
        assert errors == []


async def test_the_embeds_animations_leave_the_list_of_gifts_alone(room: Room) -> None:
    base = room.server.base_url
    async with chromium() as browser:
        page = await browser.new_page(viewport={"width": 420, "height": 600})
        errors = collect_errors(page)
        await page.goto(f"{base}/embed/{room.stream_id}")
        await page.wait_for_selector("body[data-connected='1']", state="attached", timeout=10_000)
        await _send(room, "rose", "embed-rose")
        await expect(page.locator("#lane li.alert")).not_to_have_count(0, timeout=10_000)
        await _send(room, "sunglasses", "embed-sunglasses")  # 199 coins: it pops in the middle
        await expect(page.locator(".fx-gift[data-gift='sunglasses']")).to_be_attached(
            timeout=10_000
        )
        fx = await page.locator("#fx").bounding_box()
        assert fx is not None
        for alert in await _visible_alerts(page):
            assert not _overlap(fx, alert), (fx, alert)
        await screenshot(page, "embed-animation")
        assert errors == []


async def test_an_ended_stream_says_ended_and_a_reached_goal_stays_reached(room: Room) -> None:
    """The figures under the board and the viewer count carry names; a goal passed stays marked
    as reached, after a reload too; a stream that ends says "Ended", with no LIVE badge and no
    viewer count, in the room, on its stage and in the embed, then and after a reload."""
    base = room.server.base_url
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        _, ender = await _register(http, "ender", "creator")
        r = await http.post("/v1/streams", json={"title": "Soon over"}, headers=ender)
        assert r.status_code == 201, r.text
        stream_id = str(r.json()["id"])
        goal = {"kind": "coins", "target": 100, "title": "Cake"}
        r = await http.put(f"/v1/streams/{stream_id}/goal", json=goal, headers=ender)
        assert r.status_code == 200, r.text
        async with chromium() as browser:
            page = await browser.new_page(viewport=DESKTOP)
            embed = await browser.new_page(viewport={"width": 420, "height": 600})
            errors = collect_errors(page, embed)
            await page.goto(f"{base}/live/{stream_id}")
            await embed.goto(f"{base}/embed/{stream_id}")
            for p in (page, embed):
                await p.wait_for_selector("body[data-connected='1']", state="attached")
            await expect(page.locator(".stream-totals dt")).to_have_text(
                ["Coins gifted", "Diamonds to the creator"]
            )
            count = page.locator(".viewer-count")
            await expect(count.locator(".viewers-icon")).to_be_visible()
            await expect(count).to_contain_text("Viewers")

            await _send(room, "sunglasses", "goal-sunglasses", stream_id)  # 199 of 100
            done = page.locator("#goal .goal-done")
            await expect(done).to_be_visible(timeout=10_000)
            await expect(done).to_have_text("✓ Goal reached")
            await expect(page.locator("#goal .goal-numbers")).to_have_text("199 / 100")
            await page.reload()
            await expect(done).to_be_visible(timeout=10_000)  # a state, not a passing toast
            await expect(page.locator("#stream-coins")).to_have_text("199")

            r = await http.post(f"/v1/streams/{stream_id}/end", headers=ender)
            assert r.status_code == 200, r.text
            for p in (page, embed):
                await expect(p.locator(".ended-badge")).to_have_text("Ended", timeout=10_000)
                await expect(p.locator(".live-badge")).to_have_count(0)
            await expect(count).to_be_hidden()
            await expect(page.locator("#placeholder-text")).to_have_text("This stream has ended")
            await screenshot(page, "room-ended")
            for p in (page, embed):
                await p.reload()
                await expect(p.locator(".ended-badge")).to_have_text("Ended")
                await expect(p.locator(".live-badge")).to_have_count(0)
            await expect(count).to_be_hidden()
            await expect(page.locator("#placeholder-text")).to_have_text("This stream has ended")
            assert errors == []
