"""The demo's live video, end to end: `giftwave demo` as a real process starts FFmpeg, serves
its HLS stream on the same site, and the room plays it in Chromium (the video's clock runs),
on a desktop and on a phone, in English and Arabic; without ffmpeg the demo still runs and the
room shows its placeholder, with no script error either way."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

import httpx
from browser import chromium, collect_errors, screenshot
from playwright.async_api import Page, expect
from serverproc import HOST, free_port, giftwave_executable

from giftwave.demo_video import PLAYBACK_URL, SEGMENT_S

START_TIMEOUT_S: Final = 60.0
STOP_TIMEOUT_S: Final = 15.0
DESKTOP: Final = {"width": 1366, "height": 768}
PHONE: Final = {"width": 360, "height": 740}


@contextmanager
def demo_process(tmp_path: Path, *, path_env: str | None = None) -> Iterator[tuple[str, Path, int]]:
    """`giftwave demo --no-browser --no-audience` on a free port of 127.0.0.1, its output in a
    file; stopped (SIGTERM, as Ctrl-C would) when the block ends. Yields (base URL, log, pid)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTWAVE_")}
    env.update(
        GIFTWAVE_DATABASE_URL=f"sqlite:///{tmp_path}/demo.db",
        GIFTWAVE_PASSWORD_TIME_COST="1",
        GIFTWAVE_PASSWORD_MEMORY_KIB="8",
        PYTHONUNBUFFERED="1",
    )
    if path_env is not None:
        env["PATH"] = path_env
    port = free_port()
    log = tmp_path / "demo.log"
    args = ["demo", "--no-browser", "--no-audience", "--host", HOST, "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [giftwave_executable(), *args],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=out,
        )
    base = f"http://{HOST}:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            assert proc.poll() is None, log.read_text()
            assert time.monotonic() < deadline, log.read_text()
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield base, log, proc.pid
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError("the demo did not stop on SIGTERM") from None


async def _stream(http: httpx.AsyncClient) -> dict[str, Any]:
    [live] = (await http.get("/v1/streams")).json()
    stream: dict[str, Any] = (await http.get(f"/v1/streams/{live['id']}")).json()
    return stream


async def _video_time(page: Page) -> float:
    return float(await page.eval_on_selector("#video", "v => v.currentTime"))


async def _plays(page: Page) -> None:
    """The video is shown, the placeholder gone, and its clock moves by seconds."""
    video = page.locator("#video")
    await expect(video).to_be_visible(timeout=15_000)
    await expect(page.locator("#placeholder")).to_be_hidden()
    deadline = time.monotonic() + 15
    while (first := await _video_time(page)) < 0.5:  # the page's policy forbids eval: poll
        assert time.monotonic() < deadline, "the live video does not start"
        await asyncio.sleep(0.1)
    await page.wait_for_timeout(2_500)
    assert await _video_time(page) >= first + 1.5, "the live video does not advance"


def _encoders_of(pid: int) -> list[int]:
    """FFmpeg children of a process (Linux: /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmd = (entry / "cmdline").read_bytes()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid and b"ffmpeg" in cmd:
            found.append(int(entry.name))
    return found


async def test_the_demo_room_plays_live_video_from_its_own_encoder(tmp_path: Path) -> None:
    with demo_process(tmp_path) as (base, log, pid):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            stream = await _stream(http)
            stream_id = stream["id"]
            assert stream["playback_url"] == PLAYBACK_URL
            playlist = await http.get(PLAYBACK_URL)
            assert playlist.status_code == 200
            assert playlist.headers["content-type"] == "application/vnd.apple.mpegurl"
            assert playlist.headers["cache-control"] == "no-store"  # a live playlist changes
            # Live, not a recording: the playlist rolls on and never ends.
            await asyncio.sleep(SEGMENT_S * 2.5)
            later = (await http.get(PLAYBACK_URL)).text
            assert later != playlist.text
            assert "#EXT-X-ENDLIST" not in later
            # Only what the encoder writes is served from its folder.
            for other in ("/demo/hls/", "/demo/hls/../demo.db", "/demo/hls/x.txt"):
                assert (await http.get(other)).status_code == 404, other
        async with chromium("--autoplay-policy=no-user-gesture-required") as browser:
            for name, viewport, locale in (
                ("desktop", DESKTOP, "en"),
                ("phone", PHONE, "en"),
                ("ar", DESKTOP, "ar"),
            ):
                context = await browser.new_context(viewport=viewport, locale=locale)
                page = await context.new_page()
                errors = collect_errors(page)
                await page.goto(f"{base}/live/{stream_id}?lang={locale}")
                await _plays(page)
                await screenshot(page, f"demo-video-{name}")
                assert errors == [], errors
                await context.close()
        assert "placeholder" not in log.read_text()
        if sys.platform.startswith("linux"):
            [encoder] = _encoders_of(pid)
    if sys.platform.startswith("linux"):  # stopped with the demo, none left behind
        assert not await asyncio.to_thread(_alive_after, encoder, STOP_TIMEOUT_S)


def _alive_after(pid: int, wait_s: float) -> bool:
    deadline = time.monotonic() + wait_s
    while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    return Path(f"/proc/{pid}").exists()


async def test_without_ffmpeg_the_demo_runs_with_the_placeholder(tmp_path: Path) -> None:
    no_ffmpeg = tmp_path / "bin"
    no_ffmpeg.mkdir()
    with demo_process(tmp_path, path_env=str(no_ffmpeg)) as (base, log, _):
        async with httpx.AsyncClient(base_url=base, timeout=10) as http:
            stream = await _stream(http)
            stream_id = stream["id"]
            assert stream["playback_url"] is None
            assert (await http.get(PLAYBACK_URL)).status_code == 404
        async with chromium() as browser:
            context = await browser.new_context(viewport=PHONE)
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/live/{stream_id}")
            await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
            await expect(page.locator("#placeholder")).to_be_visible()
            await expect(page.locator("#video")).to_be_hidden()
            assert errors == [], errors
        assert "ffmpeg is not on PATH" in log.read_text()
