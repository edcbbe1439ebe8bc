"""A spending reminder on the room page, in a real browser (Debian's Chromium) on a real
server with Redis: a viewer who has been gifting for a minute (their earlier gifts counted by
another node: the same state code on the same Redis) taps a Rose; the reminder appears gently,
in their language (Arabic, right to left), with a link to their spending page, and goes when
dismissed. The protocol's side (once per gift, two nodes, never broadcast) is
test_spending_reminder_nodes.py. SQLite: the state is Redis's, whatever the database."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors, screenshot
from liveclient import go_live, named_person
from playwright.async_api import expect
from redisproc import PrivateRedis
from serverproc import ADMIN_TOKEN, one_server

from giftwave.clock import now_us
from giftwave.db.urls import DatabaseUrl
from giftwave.economy.spending_reminders import RedisReminderState

PASSWORD = "pw-pw-pw-pw"  # liveclient.person's
OPERATOR = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
EARLIER_US = 55 * 10**6


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_the_reminder_shows_in_the_viewers_language_and_is_dismissed(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    with (
        PrivateRedis(tmp_path) as redis,
        one_server(
            bare_db_url,
            tmp_path,
            GIFTWAVE_BROKER_URL=redis.url,
            GIFTWAVE_SPENDING_REMINDER_AFTER_MIN="1",
            GIFTWAVE_SPENDING_REMINDER_GAP_MIN="10",
        ) as server,
    ):
        base = server.base_url
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            _, creator_token, _ = await named_person(http, "creator")
            stream_id = await go_live(http, creator_token, "Reminders")
            viewer_id, _, handle = await named_person(http, "viewer")
            r = await http.post(
                f"/v1/admin/users/{viewer_id}/coins",
                json={"coins": 100, "idempotency_key": "reminder-grant"},
                headers=OPERATOR,
            )
            assert r.status_code == 200, r.text
        elsewhere = RedisReminderState(redis.url)
        first_us = now_us() - EARLIER_US
        try:  # a gift 55 s ago: a gift 5 s from now or later makes a minute of gifting
            said, _ = await elsewhere.advance(viewer_id, first_us, 1, 1, 10)
            assert said is None
        finally:
            await elsewhere.close()

        async with chromium() as browser:
            context = await browser.new_context(
                viewport={"width": 1366, "height": 768}, locale="ar"
            )
            r2 = await context.request.post(
                f"{base}/v1/auth/login", data={"login": handle, "password": PASSWORD}
            )
            assert r2.ok, await r2.text()
            page = await context.new_page()
            errors = collect_errors(page)
            await page.goto(f"{base}/live/{stream_id}?lang=ar")
            await expect(page.locator("html")).to_have_attribute("dir", "rtl")
            await page.wait_for_selector("body[data-connected='1']", timeout=10_000)
            await asyncio.sleep(max(0.0, (first_us + 61 * 10**6 - now_us()) / 1e6))
            await page.locator(".gift-button[data-gift='rose']").click()
            note = page.locator(".toast.spending-reminder")
            await expect(note).to_have_count(1, timeout=10_000)
            await expect(note).not_to_contain_text("Time for a break")  # in Arabic, not English
            await expect(note.locator("a")).to_have_attribute("href", "/me/spending")
            await expect(note.locator("a")).to_have_text("إنفاقك")
            dismiss = note.locator("button.dismiss")
            await expect(dismiss).to_have_text("إخفاء")
            await screenshot(page, "spending-reminder-ar")
            await dismiss.click()
            await expect(note).to_have_count(0)
            assert errors == [], errors
