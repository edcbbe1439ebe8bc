"""Creator data that breaks out of the JSON a page embeds (#16, item 10).

A page hands its script what it needs as JSON in ``<script type="application/json">``. The
HTML parser decides where that element ends: ``<!--<script>`` in the data makes the element's
own ``</script>`` no longer end it, and the rest of the page (its other elements, its scripts)
becomes the text of the boot element. A creator puts that, and ``</script>``, in a stream title,
a playback URL and a clip title, all stored (SQLite and PostgreSQL); the viewer, embed, clip
and home pages must still render whole in Chromium: the boot data parses and carries the value
as typed, the elements after it exist and the page's scripts run (the room connects)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest
from browser import chromium, collect_errors
from clipfiles import make_video
from liveclient import person
from offsite_stub import NO_DNS, stub_offsite
from playwright.async_api import Page, expect
from serverproc import ServerProcess, one_server

from giftwave.db.urls import DatabaseUrl

# What breaks the parser out of a script element. (U+2028 and U+2029, escaped too, are not
# printable: titles refuse them; tests/unit/test_json_in_html.py has them.)
PAYLOAD = "<!--<script>x</script><script>document.body.dataset.owned='1'</script>&"
TITLE = f"Night {PAYLOAD}"
# Loopback, a port nothing listens on: the video fails quietly; nothing leaves the machine.
PLAYBACK_URL = f"http://127.0.0.1:9/hls/{PAYLOAD}.m3u8"
_BOOT_RE = re.compile(r'<script type="application/json" id="boot">(.*?)</script>', re.S)


@dataclass(frozen=True, slots=True)
class Planted:
    server: ServerProcess
    stream_id: str
    clip_id: str


@pytest.fixture(scope="module")
def planted(
    module_bare_db_url: DatabaseUrl, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Planted]:
    """One server per backend, a creator whose stream and clip carry the payload."""
    files = tmp_path_factory.mktemp("clips")
    video = make_video(files / "tiny.mp4", seconds=1)
    clip_env = {"GIFTWAVE_CLIP_STORE": str(files / "store"), "GIFTWAVE_CLIP_TMP_DIR": str(files)}
    with one_server(module_bare_db_url, tmp_path_factory.mktemp("logs"), **clip_env) as server:
        stream_id, clip_id = asyncio.run(_plant(server.base_url, video.read_bytes()))
        yield Planted(server, stream_id, clip_id)


async def _plant(base: str, video: bytes) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=base, timeout=30) as http:
        _, token = await person(http, "creator")
        creator = {"Authorization": f"Bearer {token}"}
        r = await http.post(
            "/v1/streams", json={"title": TITLE, "playback_url": PLAYBACK_URL}, headers=creator
        )
        assert r.status_code == 201, r.text
        assert r.json()["playback_url"] == PLAYBACK_URL  # stored as typed
        stream_id = str(r.json()["id"])
        r = await http.post(
            "/v1/clips",
            data={"title": TITLE},
            files={"file": ("tiny.mp4", video, "application/octet-stream")},
            headers=creator,
        )
        assert r.status_code == 201, r.text
        return stream_id, str(r.json()["id"])


def _boot_is_inert(html: str) -> None:
    """The boot element holds no markup at all: nothing in it can end it early."""
    found = _BOOT_RE.search(html)
    assert found is not None
    boot = found.group(1)
    markup = [boot[max(0, i - 40) : i + 40] for i, c in enumerate(boot) if c in "<>&"]
    assert markup == [], markup[:3]


async def test_pages_carry_the_payload_as_inert_json(planted: Planted) -> None:
    async with httpx.AsyncClient(base_url=planted.server.base_url, timeout=30) as http:
        for path in (f"/live/{planted.stream_id}", f"/embed/{planted.stream_id}"):
            r = await http.get(path)
            assert r.status_code == 200, r.text
            _boot_is_inert(r.text)
        r = await http.get(f"/clips/{planted.clip_id}")
        assert r.status_code == 200, r.text
        _boot_is_inert(r.text)


async def _whole(page: Page, boot_key: str, expected: str) -> None:
    """The boot parsed, with the value as the creator typed it; the toasts box (the last
    element of every page) exists; the injected script never ran."""
    boot = await page.evaluate("JSON.parse(document.getElementById('boot').textContent)")
    value = boot
    for key in boot_key.split("."):
        value = value[key]
    assert value == expected
    await expect(page.locator("#toasts")).to_be_attached()
    assert await page.evaluate("document.body.dataset.owned") is None


async def test_pages_render_whole_in_a_browser(planted: Planted) -> None:
    base = planted.server.base_url
    async with chromium(NO_DNS) as browser:
        context = await browser.new_context()
        offsite = await stub_offsite(context)
        page = await context.new_page()
        errors = collect_errors(page)

        await page.goto(f"{base}/live/{planted.stream_id}")
        await _whole(page, "playback_url", PLAYBACK_URL)
        await expect(page.locator("h1.stream-title")).to_have_text(TITLE)
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)  # scripts ran

        await page.goto(f"{base}/embed/{planted.stream_id}")
        await _whole(page, "playback_url", PLAYBACK_URL)
        await page.wait_for_selector("body[data-connected='1']", timeout=10_000)

        await page.goto(f"{base}/clips/{planted.clip_id}")
        await _whole(page, "clip.title", TITLE)
        await expect(page.locator("#clip-title")).to_have_text(TITLE)
        await expect(page.locator("#download-status")).to_be_attached()

        await page.goto(f"{base}/")
        await expect(page.locator("#toasts")).to_be_attached()
        await expect(page.get_by_text(TITLE).first).to_be_attached()
        assert offsite == []
        # The video's address answers nothing: its failed load is the only error allowed.
        assert [e for e in errors if "127.0.0.1:9/" not in e and "Failed to load" not in e] == []
        await context.close()
