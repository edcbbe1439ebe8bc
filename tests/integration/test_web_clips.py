"""Clips in a real browser: a creator uploads a small generated clip from /studio/clips; a viewer
opens the clip page on a phone, the video plays (served with range requests), they react and
repost; the creator asks for a download on the clip page, waits for the job, saves the file, and
ffprobe shows it is the clip plus the 2 s end card; the studio shows the download counted, and
turning downloads off takes the button away. Both pages pass axe-core's WCAG 2.1 AA rules (the
clip page in English and Arabic). No console errors."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from clipfiles import ffprobe, make_video
from liveclient import person
from playwright.async_api import Page, expect
from serverproc import one_server
from test_web_a11y import _violations

from giftwave.clips.media import END_CARD_S
from giftwave.db.urls import DatabaseUrl

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's


async def _log_in(page: Page, base: str, handle: str, path: str) -> None:
    await page.goto(f"{base}/login?next={path}")
    await page.fill("input[name=login]", handle)
    await page.fill("input[name=password]", PASSWORD)
    await page.click("button[type=submit]")
    await page.wait_for_url(f"{base}{path}")


async def _handle(http: httpx.AsyncClient, token: str) -> str:
    me = await http.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
    return str(me.json()["handle"])


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_upload_play_react_repost_and_download_a_watermarked_clip(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    source = make_video(tmp_path / "tiny.mp4", seconds=2)
    env = {
        "GIFTWAVE_CLIP_STORE": f"file://{tmp_path}/store",
        "GIFTWAVE_CLIP_TMP_DIR": str(tmp_path / "tmp"),
    }
    with one_server(bare_db_url, tmp_path, **env) as server:
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http, chromium() as browser:
            _, creator_token = await person(http, "creator")
            _, viewer_token = await person(http, "viewer")
            creator_handle = await _handle(http, creator_token)
            viewer_handle = await _handle(http, viewer_token)
            studio_ctx = await browser.new_context(
                viewport={"width": 1280, "height": 800}, accept_downloads=True
            )
            phone_ctx = await browser.new_context(viewport={"width": 360, "height": 740})
            studio, phone = await studio_ctx.new_page(), await phone_ctx.new_page()
            errors = collect_errors(studio, phone)

            # The creator uploads from the studio's clips page.
            await _log_in(studio, base, creator_handle, "/studio/clips")
            await studio.fill("#clip-title-input", "Tiny test pattern")
            await studio.set_input_files("#clip-file", str(source))
            await studio.click("#clip-submit")
            row = studio.locator("#clip-rows tr[data-clip]")
            await expect(row).to_have_count(1, timeout=20_000)
            await expect(row.locator(".download-count")).to_have_text("0")
            clip_id = await row.get_attribute("data-clip")
            await screenshot(studio, "studio-clips")
            assert await _violations(studio) == []

            # A viewer on a phone: the clip plays, they react and repost.
            await _log_in(phone, base, viewer_handle, f"/clips/{clip_id}")
            video = phone.locator("#clip-video")
            await video.evaluate("v => { v.muted = true; return v.play(); }")
            await phone.wait_for_function(
                "() => { const v = document.getElementById('clip-video');"
                " return v.readyState >= 2 && v.currentTime > 0.2; }",
                timeout=15_000,
            )
            fire = phone.locator(".reaction[data-emoji='fire']")
            await fire.click()
            await expect(fire).to_have_attribute("aria-pressed", "true")
            await expect(phone.locator("#count-fire")).to_have_text("1")
            await phone.click("#repost")
            await expect(phone.locator("#repost")).to_have_attribute("aria-pressed", "true")
            await expect(phone.locator("#repost-count")).to_have_text("1")
            await screenshot(phone, "clip-page-phone")
            assert await _violations(phone) == []  # WCAG 2.1 AA (axe-core)
            shared = (await http.get(f"/v1/users/{viewer_handle}/shared")).json()
            assert [s["clip"]["id"] for s in shared] == [clip_id]

            # The creator asks for a download and saves the watermarked file.
            await studio.goto(f"{base}/clips/{clip_id}")
            await expect(studio.locator("#count-fire")).to_have_text("1")
            await studio.click("#download")
            link = studio.locator("#download-file")
            await expect(link).to_be_visible(timeout=60_000)
            async with studio.expect_download() as saving:
                await link.click()
            saved = tmp_path / "saved.mp4"
            await (await saving.value).save_as(saved)
            original, rendered = ffprobe(source), ffprobe(saved)
            assert rendered.duration_s == pytest.approx(original.duration_s + END_CARD_S, abs=0.25)
            assert (rendered.width, rendered.height) == (original.width, original.height)

            # The studio counts it; turning downloads off hides the button from viewers.
            await studio.goto(f"{base}/studio/clips")
            await expect(row.locator(".download-count")).to_have_text("1")
            await row.locator(".downloads-toggle").uncheck()
            await expect(studio.locator(".toast").last).to_be_visible()
            await phone.reload()
            await expect(phone.locator("#clip-video")).to_be_visible()
            await expect(phone.locator("#download")).to_have_count(0)
            await phone.goto(f"{base}/clips/{clip_id}?lang=ar")  # right to left
            await expect(phone.locator("html")).to_have_attribute("dir", "rtl")
            assert await _violations(phone) == []
            await screenshot(phone, "clip-page-phone-ar")
            assert errors == []
