"""The sign-up page's "I want to go live as a creator", ticked by someone under their country's
creator age, in a real browser: the API's refusal (403 creator_too_young, min_age) is said in the
page's language with the age, the page stays, and no account exists afterwards. The storage side
runs on both databases in test_become_creator.py; this is the page's translation of it."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import httpx
import pytest
from browser import chromium, collect_errors
from playwright.async_api import expect
from serverproc import one_server

from giftwave.db.urls import DatabaseUrl

FORBIDDEN = "Failed to load resource: the server responded with a status of 403 (Forbidden)"
REFUSED = {
    "ar": "يمكنك أن تصبح صانع محتوى بدءًا من سن 18",
    "es": "Puedes hacerte creador a partir de los 18 años",
    "en": "You can become a creator from the age of 18",
}


@pytest.mark.parametrize("bare_db_url", ["sqlite"], indirect=True)
async def test_a_minor_ticking_creator_at_sign_up_is_told_in_their_language(
    bare_db_url: DatabaseUrl, tmp_path: Path
) -> None:
    today = date.today()
    seventeen = today.replace(year=today.year - 17, day=min(today.day, 28)).isoformat()
    with one_server(bare_db_url, tmp_path) as server:
        base = server.base_url
        async with chromium() as browser:
            for locale, refused in REFUSED.items():
                context = await browser.new_context(locale=locale)
                page = await context.new_page()
                errors = collect_errors(page)
                handle = f"young{locale}"
                await page.goto(f"{base}/signup?next=/studio")
                await page.fill("input[name=handle]", handle)
                await page.fill("input[name=email]", f"{handle}@example.org")
                await page.fill("input[name=password]", "a-long-password")
                await page.fill("input[name=birth_date]", seventeen)
                await page.select_option("select[name=country]", "US")
                await page.check("input[name=creator]")
                await page.click("button[type=submit]")

                error = page.locator("#auth-form .form-error")
                await expect(error).to_have_text(refused)
                await expect(page.locator("#age-notice")).to_be_hidden()
                assert page.url == f"{base}/signup?next=/studio"  # still here, to untick it
                assert errors == [FORBIDDEN]  # the API's answer, and nothing else
                await context.close()

        # Nothing was created: the same handle signs up as a viewer.
        async with httpx.AsyncClient(base_url=base, timeout=30) as http:
            for locale in REFUSED:
                r = await http.post(
                    "/v1/auth/register",
                    json={"handle": f"young{locale}", "email": f"young{locale}@example.org",
                          "password": "a-long-password", "birth_date": seventeen,
                          "country": "US"},
                )  # fmt: skip
                assert r.status_code == 201, r.text
